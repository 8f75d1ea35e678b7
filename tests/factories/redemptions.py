"""Claims, decisions, refunds, settlements and feedback made through the API, and the
read-outs the redemption tests check them with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.programmes import (
    Snapshot,
    accredit,
    funded_programme,
    issue,
    session_factory,
    snapshot,
)
from voucherledger import chart, ledger
from voucherledger.vouchers import codes

# The modules whose ``utcnow`` decides holds, their timeouts and expiry.
CLOCKED_MODULES = (
    "voucherledger.redemptions.service",
    "voucherledger.vouchers.service",
    "voucherledger.sweep.service",
)


# --- a clock the test moves ----------------------------------------------------------


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@contextmanager
def moved_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """The clock of claims, sweeps and expiry, under the test's control."""
    clock = Clock()
    with monkeypatch.context() as patched:
        for module in CLOCKED_MODULES:
            patched.setattr(f"{module}.utcnow", clock)
        yield clock


# --- request bodies and calls --------------------------------------------------------


def claim_body(
    code: str, amount: int, category: str = "leadership", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "voucher_code": code,
        "amount": amount,
        "service_category": category,
        "description": "Two-day board training",
        "evidence": [{"kind": "attendance", "reference": "sheet 14"}],
    }
    body.update(extra)
    return body


def post_claim(
    client: TestClient,
    supplier: Party,
    code: str,
    amount: int,
    category: str = "leadership",
    **extra: Any,
) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/redemptions",
        headers=supplier.headers,
        json=claim_body(code, amount, category, **extra),
    )
    return response


def claim(
    client: TestClient,
    supplier: Party,
    code: str,
    amount: int,
    category: str = "leadership",
    **extra: Any,
) -> dict[str, Any]:
    response = post_claim(client, supplier, code, amount, category, **extra)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def decide(
    client: TestClient, party: Party, redemption_id: str, action: str, **body: Any
) -> httpx.Response:
    """``confirm``, ``reject`` (takes ``reason``) or ``cancel``."""
    if action == "reject":
        body.setdefault("reason", "not delivered")
    response: httpx.Response = client.post(
        f"/v1/redemptions/{redemption_id}/{action}",
        headers=party.headers,
        json=body if action == "reject" else None,
    )
    return response


def refund(
    client: TestClient, party: Party, redemption_id: str, amount: int, reason: str = "overcharged"
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/v1/redemptions/{redemption_id}/refunds",
        headers=party.headers,
        json={"amount": amount, "reason": reason},
    )
    return response


def settle(
    client: TestClient, funder: Party, programme_id: str, supplier_id: str, reference: str = "wire"
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/v1/programmes/{programme_id}/settlements",
        headers=funder.headers,
        json={"supplier_id": supplier_id, "payout_reference": reference},
    )
    return response


def feedback(
    client: TestClient, group: Party, redemption_id: str, rating: int | float = 4
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/v1/redemptions/{redemption_id}/feedback",
        headers=group.headers,
        json={"rating": rating, "outcome": "Board now meets monthly", "outcome_kind": "process"},
    )
    return response


def sweep(client: TestClient, issuer: Party, programme_id: str) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/v1/programmes/{programme_id}/sweep", headers=issuer.headers
    )
    return response


def get_voucher(client: TestClient, party: Party, voucher_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/vouchers/{voucher_id}", headers=party.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def get_claim(client: TestClient, party: Party, redemption_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/redemptions/{redemption_id}", headers=party.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def mistyped(code: str) -> str:
    """The code with its last data character changed: the check character catches it."""
    data = code[:-2]
    wrong = "0" if data[-1] != "0" else "1"
    typo = f"{data[:-1]}{wrong}-{code[-1]}"
    assert codes.normalise(typo) is None
    return typo


def unknown_code() -> str:
    """A well-formed code (its check character matches) that no voucher carries."""
    return codes.generate()


def today() -> date:
    return datetime.now(UTC).date()


# --- what the ledger and the database hold ---------------------------------------------


def payable(client: TestClient, supplier_id: str, programme_id: str) -> int:
    with session_factory(client)() as session:
        return ledger.balance(session, chart.payable(supplier_id, programme_id))


def paid(client: TestClient, supplier_id: str, currency: str = "EUR") -> int:
    """What the supplier has been paid in total (0 before its first settlement)."""
    with session_factory(client)() as session:
        try:
            return ledger.balance(session, chart.paid(supplier_id, currency))
        except ledger.UnknownAccount:
            return 0


def voucher_accounts(client: TestClient, voucher_id: str) -> tuple[int, int]:
    """(balance, held) of a voucher, read from the ledger."""
    with session_factory(client)() as session:
        found = ledger.balances(session, [chart.voucher(voucher_id), chart.held(voucher_id)])
    return found[chart.voucher(voucher_id)], found[chart.held(voucher_id)]


_CLAIM_ROWS = {
    "redemptions": (
        "SELECT id, status, amount, refunded_amount, settlement_id, decided_at, void_reason "
        "FROM redemptions ORDER BY id"
    ),
    "feedback": "SELECT redemption_id, rating FROM feedback ORDER BY redemption_id",
    "settlements": (
        "SELECT id, amount, status, transaction_id, approved_by, rejected_by, redemption_ids "
        "FROM settlements ORDER BY id"
    ),
    "vouchers": "SELECT id, status, ended_transaction_id FROM vouchers ORDER BY id",
    "accreditations": (
        "SELECT programme_id, supplier_id, status, updated_at FROM accreditations "
        "ORDER BY programme_id, supplier_id"
    ),
    "idempotency_records": "SELECT account_id, key FROM idempotency_records ORDER BY 1, 2",
}


ClaimSnapshot = Snapshot


def claim_snapshot(client: TestClient) -> Snapshot:
    """Everything a refused claim, decision, refund, settlement or feedback must leave
    as it was: the journal's row counts, every balance, and the rows of claims,
    feedback, settlements, vouchers, accreditations and idempotency keys."""
    return snapshot(client, _CLAIM_ROWS)


def claim_count(client: TestClient) -> int:
    with session_factory(client)() as session:
        return int(session.execute(text("SELECT count(*) FROM redemptions")).scalar_one())


# --- a cast and a programme to claim in ------------------------------------------------


@dataclass(frozen=True)
class Cast:
    """The parties of a claim: one programme's funder, manager, auditor, the group
    holding its vouchers, two suppliers, and the same roles elsewhere."""

    admin: dict[str, str]
    funder: Party
    manager: Party
    auditor: Party
    group: Party
    other_group: Party
    supplier: Party
    other_supplier: Party
    other_funder: Party


def make_cast(client: TestClient) -> Cast:
    admin = admin_headers(client)
    return Cast(
        admin=admin,
        funder=make_party(client, admin, "funder"),
        manager=make_party(client, admin, "manager"),
        auditor=make_party(client, admin, "auditor"),
        group=make_party(client, admin, "group"),
        other_group=make_party(client, admin, "group"),
        supplier=make_party(
            client, admin, "supplier", supplier={"service_categories": SUPPLIER_CATEGORIES}
        ),
        other_supplier=make_party(
            client, admin, "supplier", supplier={"service_categories": SUPPLIER_CATEGORIES}
        ),
        other_funder=make_party(client, admin, "funder"),
    )


SUPPLIER_CATEGORIES = ["leadership", "fundraising", "governance"]


def claim_programme(
    client: TestClient,
    cast: Cast,
    amount: int = 1_000_000,
    *,
    accredit_for: tuple[Party, ...] = (),
    categories: list[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A funded programme with the cast's manager and auditor, and ``accredit_for``
    accredited for ``categories`` (default: every category the suppliers offer)."""
    overrides.setdefault("manager_ids", [cast.manager.id])
    overrides.setdefault("auditor_ids", [cast.auditor.id])
    programme = funded_programme(client, cast.funder, amount, **overrides)
    for supplier in accredit_for:
        accredit(
            client, cast.manager, programme["id"], supplier.id, categories or SUPPLIER_CATEGORIES
        )
    return programme


def issue_expiring(
    client: TestClient, cast: Cast, programme_id: str, amount: int, *, after: timedelta
) -> dict[str, Any]:
    """A voucher of ``cast.group`` that expires ``after`` from now (by the real clock)."""
    expires_at = (datetime.now(UTC) + after).isoformat()
    return issue(client, cast.manager, programme_id, cast.group.id, amount, expires_at=expires_at)
