"""Response headers: nosniff everywhere, no-store on whatever a key or a voucher code
can be read from, ``WWW-Authenticate`` on 401s; the offline, CSP-guarded /docs page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, bearer, client_for
from tests.factories.programmes import funded_programme, issue
from voucherledger.core.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/v1/me"),
        ("GET", "/nowhere"),
        ("DELETE", "/v1/me"),
        ("POST", "/v1/accounts"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    ],
)
def test_every_response_says_nosniff(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("vl_key_unknown_" + "0" * 64), {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["no key", "unknown key", "not bearer"],
)
def test_a_401_asks_for_a_bearer_key(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert response.headers.get_list("www-authenticate") == ["Bearer"]


def test_responses_with_keys_and_voucher_codes_are_not_stored(client: TestClient) -> None:
    admin = admin_headers(client)
    me = client.get("/v1/me", headers=admin)
    assert me.headers["cache-control"] == "no-store"

    created = client.post("/v1/accounts", headers=admin, json={"kind": "funder", "name": "F"})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    key = client.post(f"/v1/accounts/{created.json()['id']}/keys", headers=admin)
    assert key.status_code == 201
    assert key.json()["key"].startswith("vl_key_")
    assert key.headers["cache-control"] == "no-store"

    funder = make_party(client, admin, "funder")
    group = make_party(client, admin, "group")
    programme = funded_programme(client, funder, 10_000)
    voucher = issue(client, funder, programme["id"], group.id, 1_000)
    read = client.get(f"/v1/vouchers/{voucher['id']}", headers=group.headers)
    assert read.status_code == 200
    assert "code" in read.json()
    assert read.headers["cache-control"] == "no-store"
    qr = client.get(f"/v1/vouchers/{voucher['id']}/qr.svg", headers=group.headers)
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")
    assert qr.headers.get_list("cache-control") == ["no-store"]
    # Refusals to a caller with a key are not stored either.
    missing = client.get("/v1/vouchers/vch_unknown", headers=group.headers)
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "no-store"


def test_public_operational_responses_need_no_no_store(client: TestClient) -> None:
    assert "cache-control" not in client.get("/healthz").headers


# --- /docs, offline ------------------------------------------------------------------

_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def test_the_docs_page_loads_nothing_from_elsewhere(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", docs.text), docs.text
    assert "<script>" not in docs.text.replace(" ", "")  # no inline script: CSP script-src 'self'
    assets = _REFERENCE.findall(docs.text)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), assets
    assert any(asset.endswith("swagger-ui.css") for asset in assets), assets
    assert any(asset.endswith(".js") and "swagger-ui" not in asset for asset in assets), assets
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.headers["x-content-type-options"] == "nosniff"
    init = next(a for a in assets if a.endswith(".js") and "swagger-ui-bundle" not in a)
    assert "/openapi.json" in client.get(init).text


def test_the_docs_page_has_a_content_security_policy(client: TestClient) -> None:
    policy = client.get("/docs").headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy


def test_redoc_is_not_served_from_a_cdn(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404
