"""The client covers the API: every operationId of openapi/openapi.json is a method of
``Client`` and ``AsyncClient`` taking its path parameters, and the generated file is
what ``tools/gen_client.py`` makes of the document today."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voucherledger.client import AsyncClient, Client

ROOT = Path(__file__).resolve().parents[2]
SPEC = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
OPERATIONS = [
    (path, method, op)
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
    if method in ("get", "post", "put", "patch", "delete")
]


def _ids(operations: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    return [op["operationId"] for _, _, op in operations]


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=_ids(OPERATIONS))
def test_every_operation_is_a_method_with_its_path_parameters(
    cls: type[Any], path: str, method: str, op: dict[str, Any]
) -> None:
    function = getattr(cls, op["operationId"], None)
    assert function is not None, f"{cls.__name__} has no {op['operationId']}"
    assert inspect.iscoroutinefunction(function) is (cls is AsyncClient)
    parameters = inspect.signature(function).parameters
    positional = [
        name
        for name, p in parameters.items()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and name != "self"
    ]
    assert positional == re.findall(r"{(\w+)}", path)
    for name in positional:
        assert parameters[name].annotation in ("str", str)
    queries = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
    keyword_only = {n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert {re.sub(r"\W", "_", q).strip("_") for q in queries} <= keyword_only
    assert ("idempotency_key" in keyword_only) is (method == "post")
    assert op["operationId"] in (function.__doc__ or "") or f"{method.upper()} {path}" in (
        function.__doc__ or ""
    )


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_every_paginated_list_has_an_iterator(cls: type[Any]) -> None:
    lists = [
        op["operationId"]
        for _, method, op in OPERATIONS
        if method == "get" and "cursor" in [p["name"] for p in op.get("parameters", [])]
    ]
    assert "list_redemptions" in lists
    for name in lists:
        assert callable(getattr(cls, f"iter_{name}", None)), f"iter_{name}"


def test_the_generated_operations_are_up_to_date() -> None:
    done = subprocess.run(  # noqa: S603 - our own generator
        [sys.executable, str(ROOT / "tools" / "gen_client.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
