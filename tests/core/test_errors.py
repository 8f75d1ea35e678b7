"""Every error is RFC 9457 ``application/problem+json`` with a stable ``code``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories.app import admin_headers, client_for
from voucherledger.app import create_app
from voucherledger.core.errors import Conflict, problem_responses
from voucherledger.core.settings import Settings

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert PROBLEM_FIELDS <= set(body)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:voucherledger:problem:{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    return admin_headers(client)


def test_an_unknown_route_is_404_not_found(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(client.post("/v2/accounts", json={}), 404, "not_found")


def test_a_wrong_method_is_405(client: TestClient, admin: dict[str, str]) -> None:
    response = client.put("/v1/me", headers=admin, json={})
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]
    assert_problem(client.patch("/v1/accounts", headers=admin, json={}), 405, "method_not_allowed")


def post_raw(
    client: TestClient,
    admin: dict[str, str],
    content: bytes,
    content_type: str = "application/json",
) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/accounts", content=content, headers={**admin, "Content-Type": content_type}
    )
    return response


@pytest.mark.parametrize(
    "content",
    [
        b'{"kind": "funder", "name": ',
        b"{'kind': 'funder'}",
        b'{"kind": "funder", "name": "x",}',
        b"not json at all",
        b'{"kind": "funder", "name": "\xff\xfe"}',
    ],
    ids=["truncated", "single quotes", "trailing comma", "text", "invalid utf-8"],
)
def test_malformed_json_is_422(client: TestClient, admin: dict[str, str], content: bytes) -> None:
    body = assert_problem(post_raw(client, admin, content), 422, "validation_error")
    assert body["errors"]
    assert body["errors"][0]["loc"][0] == "body"


@pytest.mark.parametrize(
    "content",
    [b'[{"kind": "funder", "name": "x"}]', b'"funder"', b"42", b"null", b"true"],
    ids=["array", "string", "number", "null", "bool"],
)
def test_a_body_that_is_not_an_object_is_422(
    client: TestClient, admin: dict[str, str], content: bytes
) -> None:
    body = assert_problem(post_raw(client, admin, content), 422, "validation_error")
    assert body["errors"]


def test_a_huge_integer_is_422_not_a_crash(client: TestClient, admin: dict[str, str]) -> None:
    # Longer than Python's int-from-string limit (4300 digits): json.loads raises
    # ValueError, not JSONDecodeError.
    huge = b"9" * 5000
    response = post_raw(client, admin, b'{"kind": "funder", "name": "x", "country": ' + huge + b"}")
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["type"] == "json_invalid"
    # A merely big integer in a string field is a plain type error.
    response = post_raw(client, admin, b'{"kind": "funder", "name": ' + b"9" * 400 + b"}")
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "name"]
    assert client.get("/v1/accounts", headers=admin).json()["data"][1:] == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml"],
)
def test_a_body_that_is_not_json_by_content_type_is_415(
    client: TestClient, admin: dict[str, str], content_type: str
) -> None:
    response = post_raw(client, admin, b'{"kind": "funder", "name": "x"}', content_type)
    assert_problem(response, 415, "unsupported_media_type")
    assert client.get("/v1/accounts", headers=admin).json()["data"][1:] == []


def test_json_with_a_json_suffix_content_type_is_accepted(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = post_raw(
        client, admin, b'{"kind": "funder", "name": "x"}', "application/merge-patch+json"
    )
    assert response.status_code == 201, response.text


def test_a_validation_error_lists_every_bad_field(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        "/v1/accounts", headers=admin, json={"kind": "nope", "name": "", "country": "gb"}
    )
    body = assert_problem(response, 422, "validation_error")
    locs = {tuple(error["loc"]) for error in body["errors"]}
    assert {("body", "kind"), ("body", "name"), ("body", "country")} <= locs
    for error in body["errors"]:
        assert isinstance(error["msg"], str)
        assert error["msg"]
        assert isinstance(error["type"], str)


def test_an_unauthenticated_request_is_a_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/me"), 401, "unauthenticated")
    assert_problem(
        client.get("/v1/me", headers={"Authorization": "Bearer"}), 401, "unauthenticated"
    )


def test_an_unexpected_exception_is_a_bare_500(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret-detail in /srv/voucherledger/secret.py line 7")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/boom", headers={"X-Request-ID": "trace-500"})
        body = assert_problem(response, 500, "internal_error")
        assert response.headers["x-request-id"] == "trace-500"
        assert body["request_id"] == "trace-500"
        for leak in ("secret", "RuntimeError", "Traceback", ".py", "line 7"):
            assert leak not in response.text
        # The app still serves requests afterwards.
        assert client.get("/healthz").status_code == 200


def test_an_app_error_renders_its_own_status_and_code(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/v1/clash", responses=problem_responses(Conflict))
    def clash() -> None:
        raise Conflict("It clashes.")

    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_problem(client.get("/v1/clash"), 409, "conflict")
        assert body["detail"] == "It clashes."
        assert "errors" not in body
