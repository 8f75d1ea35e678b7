"""Request ids on every response; Prometheus metrics per route template."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.factories.app import admin_headers, client_for
from voucherledger.core.settings import Settings

GENERATED_ID = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


def request_count(client: TestClient, method: str, route: str, status: int) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        if family.name != "voucherledger_http_requests":
            continue
        for sample in family.samples:
            if sample.name == "voucherledger_http_requests_total" and sample.labels == {
                "method": method,
                "route": route,
                "status": str(status),
            }:
                return sample.value
    return 0.0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/v1/me"),
        ("GET", "/nowhere"),
        ("DELETE", "/v1/me"),
        ("POST", "/v1/accounts"),
    ],
)
def test_every_response_carries_a_generated_request_id(
    client: TestClient, method: str, path: str
) -> None:
    first = client.request(method, path)
    second = client.request(method, path)
    assert GENERATED_ID.match(first.headers["x-request-id"])
    assert GENERATED_ID.match(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "incoming",
    ["abc", "0f8c2d1e-9a4b-4c1d-8e2f-3a5b6c7d8e9f", "req.42_x-Y", "a" * 128],
)
def test_a_sane_incoming_request_id_is_echoed(client: TestClient, incoming: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    problem = client.get("/v1/me", headers={"X-Request-ID": incoming})
    assert problem.headers["x-request-id"] == incoming
    assert problem.json()["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "a" * 129, "new\u00e9line", "semi;colon", "<script>", "a/b"],
    ids=["empty", "space", "too long", "non-ascii", "semicolon", "markup", "slash"],
)
def test_an_insane_incoming_request_id_is_replaced(client: TestClient, incoming: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": incoming.encode("latin-1")})
    assert response.headers["x-request-id"] != incoming
    assert GENERATED_ID.match(response.headers["x-request-id"])
    assert len(response.headers.get_list("x-request-id")) == 1


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE voucherledger_http_requests_total counter" in response.text
    assert "voucherledger_http_request_duration_seconds_bucket" in response.text
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"voucherledger_http_requests", "voucherledger_http_request_duration_seconds"} <= names


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    admin = admin_headers(client)
    account_id = client.get("/v1/me", headers=admin).json()["id"]
    template = "/v1/accounts/{account_id}"
    ok_before = request_count(client, "GET", template, 200)
    missing_before = request_count(client, "GET", template, 404)
    unmatched_before = request_count(client, "GET", "unmatched", 404)

    for _ in range(3):
        assert client.get(f"/v1/accounts/{account_id}", headers=admin).status_code == 200
    assert client.get("/v1/accounts/acc_unknown", headers=admin).status_code == 404
    assert client.get("/definitely/not/a/route").status_code == 404

    assert request_count(client, "GET", template, 200) == ok_before + 3
    assert request_count(client, "GET", template, 404) == missing_before + 1
    assert request_count(client, "GET", "unmatched", 404) == unmatched_before + 1
    # Ids never become label values (unbounded cardinality).
    assert account_id not in client.get("/metrics").text
