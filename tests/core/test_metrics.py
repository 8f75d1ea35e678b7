"""``/metrics``: protected by ``metrics_token`` when set; the docs pages under their own
route names; the seal backlog and the sweeps' work."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.factories.app import bearer, client_for
from tests.factories.ledger import open_chart, transfer
from tests.factories.programmes import issue, session_factory
from tests.factories.redemptions import (
    claim,
    claim_programme,
    make_cast,
    moved_clock,
    sweep,
)
from voucherledger import ledger
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.settings import Settings
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.signing import load_signer

TOKEN = "scrape-" + "x" * 40


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


def sample(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == (labels or {}):
                return float(found.value)
    return None


def requests(client: TestClient, route: str, status: int = 200) -> float:
    text = client.get("/metrics").text
    labels = {"method": "GET", "route": route, "status": str(status)}
    return sample(text, "voucherledger_http_requests_total", labels) or 0.0


# --- the token -------------------------------------------------------------------------


def test_without_a_token_setting_metrics_are_open(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), bearer(TOKEN + "x"), {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "longer", "not bearer"],
)
def test_with_a_token_setting_metrics_need_it(settings: Settings, headers: dict[str, str]) -> None:
    with client_for(settings.model_copy(update={"metrics_token": TOKEN})) as client:
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "unauthenticated"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "voucherledger_http_requests_total" not in refused.text
        served = client.get("/metrics", headers=bearer(TOKEN))
        assert served.status_code == 200
        assert "voucherledger_http_requests_total" in served.text
        assert served.headers["cache-control"] == "no-store"


def test_the_token_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOUCHERLEDGER_METRICS_TOKEN", TOKEN)
    assert Settings().metrics_token == TOKEN
    monkeypatch.delenv("VOUCHERLEDGER_METRICS_TOKEN")
    assert Settings().metrics_token is None


# --- route names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/docs", "/docs"),
        ("/openapi.json", "/openapi.json"),
        ("/static/swagger-init.js", "/static"),
        ("/static/vendor/swagger-ui/swagger-ui.css", "/static"),
    ],
)
def test_the_docs_and_their_files_are_counted_under_their_own_names(
    client: TestClient, path: str, route: str
) -> None:
    before = requests(client, route)
    assert client.get(path).status_code == 200
    assert requests(client, route) == before + 1


def test_a_missing_static_file_is_counted_under_static_not_its_path(client: TestClient) -> None:
    before = requests(client, "/static", 404)
    assert client.get("/static/no-such-file.js").status_code == 404
    assert requests(client, "/static", 404) == before + 1
    assert "no-such-file" not in client.get("/metrics").text


# --- the seal backlog ---------------------------------------------------------------------


def test_seal_queue_depth_and_lag(client: TestClient, settings: Settings) -> None:
    factory = session_factory(client)
    text = client.get("/metrics").text
    assert sample(text, "voucherledger_seal_queue_depth") == 0
    assert sample(text, "voucherledger_seal_lag_seconds") == 0

    open_chart(factory, ["a:1"])
    with transaction(factory) as session:
        ledger.post(
            session,
            kind="transfer",
            legs=[ledger.Leg("funder:f1", -5, "EUR"), ledger.Leg("a:1", 5, "EUR")],
            now=utcnow() - timedelta(minutes=10),
        )
    transfer(factory, "funder:f1", "a:1", 7)
    text = client.get("/metrics").text
    assert sample(text, "voucherledger_seal_queue_depth") == 2
    lag = sample(text, "voucherledger_seal_lag_seconds")
    assert lag is not None
    assert 600 <= lag < 3600  # the oldest of the two, not the newest

    signer = load_signer(settings.signing_key, settings.signing_key_file)
    assert seal_pending(factory, signer, batch_size=100) == 2
    text = client.get("/metrics").text
    assert sample(text, "voucherledger_seal_queue_depth") == 0
    assert sample(text, "voucherledger_seal_lag_seconds") == 0


# --- the sweeps ----------------------------------------------------------------------------


def test_sweeps_count_the_vouchers_they_expire_and_the_holds_they_release(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def counts() -> tuple[float, float]:
        text = client.get("/metrics").text
        return (
            sample(text, "voucherledger_sweep_vouchers_expired_total") or 0.0,
            sample(text, "voucherledger_sweep_holds_released_total") or 0.0,
        )

    with moved_clock(monkeypatch) as clock:
        cast = make_cast(client)
        programme = claim_programme(
            client, cast, 60_000, accredit_for=(cast.supplier,), rules={"hold_days": 3}
        )
        pid = programme["id"]
        lasting = issue(client, cast.manager, pid, cast.group.id, 10_000)
        for _ in range(2):
            issue(
                client,
                cast.manager,
                pid,
                cast.group.id,
                1_000,
                expires_at=(clock() + timedelta(days=1)).isoformat(),
            )
        claim(client, cast.supplier, lasting["code"], 1_000)
        before = counts()

        clock.advance(timedelta(days=4))
        swept = sweep(client, cast.manager, pid)
        assert swept.status_code == 200, swept.text
        assert swept.json()["expired_vouchers"] == 2
        assert swept.json()["released_holds"] == 1
        assert counts() == (before[0] + 2, before[1] + 1)

        # A sweep that finds nothing adds nothing.
        assert sweep(client, cast.manager, pid).status_code == 200
        assert counts() == (before[0] + 2, before[1] + 1)
