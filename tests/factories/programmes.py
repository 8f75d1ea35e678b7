"""Programmes, deposits, accreditations and vouchers made through the API, and the
read-outs the programme and voucher tests check them with."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_SIGNING_KEY, fresh_database, require_postgres
from tests.factories.accounts import Party
from tests.factories.app import client_for
from tests.factories.ledger import account_balances, journal_counts, ledger_violations
from voucherledger import chart, ledger
from voucherledger.core.settings import Settings

PROBLEM_JSON = "application/problem+json"
# ``deposited`` is always the sum of these seven.
BALANCE_PARTS = (
    "unissued",
    "unissued_women_led_reserve",
    "outstanding",
    "held",
    "payable",
    "settled",
    "returned_to_funder",
)


# --- an app on its own database, for fixtures wider than one test --------------------


@contextmanager
def client_on(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A client of the app over a fresh migrated database, as ``settings`` gives one test;
    for module-scoped worlds that several tests share."""
    if backend == "postgresql":
        require_postgres()
    settings = Settings(
        database_url=fresh_database(backend, request, tmp_path),
        signing_key=TEST_SIGNING_KEY,
        signing_key_file=tmp_path / "unused-key",
        sealer_enabled=False,
        sweep_enabled=False,  # tests sweep when they mean to
        pool_size=2,
        log_level="WARNING",
    )
    with client_for(settings) as client:
        yield client


def session_factory(client: TestClient) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = client.app.state.session_factory  # type: ignore[attr-defined]
    return factory


# --- request bodies and calls --------------------------------------------------------


def programme_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Capacity building 2025",
        "currency": "EUR",
        "service_categories": ["leadership", "fundraising", "governance"],
        "rules": {},
    }
    body.update(overrides)
    return body


def create_programme(client: TestClient, funder: Party, **overrides: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/programmes", headers=funder.headers, json=programme_body(**overrides)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deposit(
    client: TestClient, funder: Party, programme_id: str, amount: int, reference: str = "grant"
) -> dict[str, Any]:
    response = client.post(
        f"/v1/programmes/{programme_id}/deposits",
        headers=funder.headers,
        json={"amount": amount, "reference": reference},
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def funded_programme(
    client: TestClient, funder: Party, amount: int, **overrides: Any
) -> dict[str, Any]:
    programme = create_programme(client, funder, **overrides)
    deposit(client, funder, programme["id"], amount)
    return programme


def accredit(
    client: TestClient, issuer: Party, programme_id: str, supplier_id: str, categories: list[str]
) -> dict[str, Any]:
    response = client.post(
        f"/v1/programmes/{programme_id}/accreditations",
        headers=issuer.headers,
        json={"supplier_id": supplier_id, "service_categories": categories},
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def voucher_item(group_id: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {"group_id": group_id, "amount": amount, **extra}


def issue(
    client: TestClient, issuer: Party, programme_id: str, group_id: str, amount: int, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        f"/v1/programmes/{programme_id}/vouchers",
        headers=issuer.headers,
        json=voucher_item(group_id, amount, **extra),
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def issue_batch(
    client: TestClient, issuer: Party, programme_id: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    response = client.post(
        f"/v1/programmes/{programme_id}/vouchers/batch",
        headers=issuer.headers,
        json={"vouchers": items},
    )
    assert response.status_code == 201, response.text
    made: list[dict[str, Any]] = response.json()["data"]
    assert len(made) == len(items)
    return made


def get_programme(client: TestClient, party: Party, programme_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/programmes/{programme_id}", headers=party.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def balances(client: TestClient, party: Party, programme_id: str) -> dict[str, int]:
    found: dict[str, int] = get_programme(client, party, programme_id)["balances"]
    assert found["deposited"] == sum(found[part] for part in BALANCE_PARTS), found
    return found


def list_all(
    client: TestClient, headers: dict[str, str], path: str, **params: str | int
) -> list[dict[str, Any]]:
    """Every item of a list endpoint, walking the cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query: dict[str, str | int] = {"limit": 500, **params}
        if cursor is not None:
            query["cursor"] = cursor
        response = client.get(path, headers=headers, params=query)
        assert response.status_code == 200, response.text
        items.extend(response.json()["data"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert (response.status_code, response.headers.get("content-type")) == (
        status,
        PROBLEM_JSON,
    ), response.text
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    assert body["type"] == f"urn:voucherledger:problem:{code}"
    assert body["detail"]
    return body


# --- what the database holds ---------------------------------------------------------

# Rows of the tables this issue writes besides the journal, in a comparable form.
_ROW_QUERIES = {
    "programmes": "SELECT id, status, closed_at FROM programmes ORDER BY id",
    "programme_parties": (
        "SELECT programme_id, account_id, role FROM programme_parties "
        "ORDER BY programme_id, account_id"
    ),
    "accreditations": (
        "SELECT programme_id, supplier_id, status, updated_at FROM accreditations "
        "ORDER BY programme_id, supplier_id"
    ),
    "vouchers": "SELECT id, status, ended_transaction_id FROM vouchers ORDER BY id",
}


@dataclass(frozen=True)
class Snapshot:
    journal: dict[str, int]
    accounts: dict[str, int]
    rows: dict[str, list[tuple[Any, ...]]]


def snapshot(client: TestClient, queries: Mapping[str, str] | None = None) -> Snapshot:
    """Everything a refused request must leave as it was: the journal's row counts,
    every balance, and the rows ``queries`` read (by default the programme tables)."""
    with session_factory(client)() as session:
        return Snapshot(
            journal=journal_counts(session),
            accounts=account_balances(session),
            rows={
                table: [tuple(row) for row in session.execute(text(sql))]
                for table, sql in (queries or _ROW_QUERIES).items()
            },
        )


def voucher_count(client: TestClient) -> int:
    with session_factory(client)() as session:
        return int(session.execute(text("SELECT count(*) FROM vouchers")).scalar_one())


def ledger_problems(client: TestClient) -> list[str]:
    """Breaches of the ledger's guarantees (empty when sound), including a trial balance
    that does not sum to zero."""
    with session_factory(client)() as session:
        problems = ledger_violations(session)
        totals = ledger.trial_balance(session).totals
        if any(totals.values()):
            problems.append(f"trial balance {totals}")
        return problems


def ledger_balances_of(client: TestClient, programme_id: str, funder_id: str) -> dict[str, int]:
    """The programme's budget accounts and its funder's account, read from the ledger."""
    with session_factory(client)() as session:
        return ledger.balances(
            session,
            [
                chart.unissued(programme_id),
                chart.women_led_reserve(programme_id),
                chart.funder(funder_id, "EUR"),
            ],
        )
