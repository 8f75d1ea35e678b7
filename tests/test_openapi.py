"""``openapi/openapi.json`` is the contract: committed, current, and complete."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from voucherledger.ops.openapi import main, render

OPENAPI_FILE = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
# The operations anyone may call, without a key or a session (accepting an invitation,
# signing in): the only ones without a security requirement, and the only POSTs
# without an Idempotency-Key (it is scoped to the caller's account).
PUBLIC_OPERATIONS = frozenset({"accept_invite", "create_session"})
# POSTs that change nothing (a voucher code does not belong in a URL): no Idempotency-Key.
LOOKUP_OPERATIONS = frozenset({"validate_voucher", "check_voucher_batch"})


@pytest.fixture(scope="module")
def rendered() -> str:
    return render()


@pytest.fixture(scope="module")
def document(rendered: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in sorted(document["paths"].items())
        for method, operation in sorted(item.items())
        if method in METHODS
    ]


def test_the_committed_document_is_current(rendered: str) -> None:
    assert OPENAPI_FILE.exists(), f"{OPENAPI_FILE} is missing: run `make openapi`"
    committed = OPENAPI_FILE.read_text(encoding="utf-8")
    assert committed == rendered, (
        f"{OPENAPI_FILE} differs from what the app exports: run `make openapi` "
        "and commit the result"
    )


def test_the_export_is_stable_and_sorted(rendered: str) -> None:
    assert render() == rendered
    assert rendered.endswith("}\n")
    assert (
        rendered
        == json.dumps(json.loads(rendered), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    )


def test_exporting_touches_no_database_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOUCHERLEDGER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    render()
    assert list(tmp_path.iterdir()) == []


def test_check_fails_on_a_stale_file_and_write_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "openapi" / "openapi.json"
    assert main(check=True, path=target) == 1
    target.parent.mkdir()
    target.write_text('{"stale": true}\n')
    assert main(check=True, path=target) == 1
    assert "make openapi" in capsys.readouterr().err
    assert main(path=target) == 0
    assert main(check=True, path=target) == 0
    assert target.read_text() == render()


def test_operation_ids_are_present_and_unique(document: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for _, _, operation in operations(document)]
    assert None not in ids
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert duplicates == []
    for operation_id in ids:
        assert isinstance(operation_id, str)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", operation_id), operation_id


def test_every_v1_operation_documents_its_problems(document: dict[str, Any]) -> None:
    missing: list[str] = []
    for method, path, operation in operations(document):
        if not path.startswith("/v1/"):
            continue
        where = f"{method.upper()} {path}"
        responses: dict[str, Any] = operation["responses"]
        public = operation["operationId"] in PUBLIC_OPERATIONS
        if not public and "401" not in responses:
            missing.append(f"{where}: no 401")
        takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
        if takes_input and "422" not in responses:
            missing.append(f"{where}: takes input but documents no 422")
        for status, response in responses.items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            if set(content) != {PROBLEM_JSON}:
                missing.append(
                    f"{where} {status}: content {sorted(content)}, not only {PROBLEM_JSON}"
                )
            elif content[PROBLEM_JSON].get("schema", {}).get("$ref") != PROBLEM_REF:
                missing.append(f"{where} {status}: not the Problem schema")
            if not response.get("description"):
                missing.append(f"{where} {status}: no codes in the description")
    assert missing == [], "\n".join(missing)


def test_fastapis_own_validation_error_shape_is_not_documented(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    problem = schemas["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])


def test_every_post_documents_the_idempotency_key(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if method != "post":
            continue
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        keyless = PUBLIC_OPERATIONS | LOOKUP_OPERATIONS
        assert ("Idempotency-Key" in headers) != (operation["operationId"] in keyless), path


def test_v1_operations_require_the_bearer_key(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    for _, path, operation in operations(document):
        if path.startswith("/v1/"):
            public = operation["operationId"] in PUBLIC_OPERATIONS
            assert bool(operation.get("security")) != public, path
