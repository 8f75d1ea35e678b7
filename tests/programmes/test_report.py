"""The programme report, checked against the journal.

A funder runs a programme with a women-led reserve for five groups of different
types and origins (two women-led); vouchers go out in a batch and one at a time;
three suppliers are accredited (one never claims). Claims end in every state —
pending, captured, rejected, cancelled — with partial refunds, one settlement,
feedback of both outcome kinds, a voucher revoked with a claim still held (the
hold released and a refund made after it ended go back to the budget), and a
voucher that expires.

The test then recomputes every figure of the report on its own, with plain SQL
over ``ledger_transactions``/``ledger_postings`` and the claim rows, and expects
the report (JSON and CSV) to say exactly that; a few totals are also worked out
by hand from the story, so the two computations cannot share a mistake unseen.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.programmes import (
    accredit,
    assert_problem,
    client_on,
    funded_programme,
    issue,
    issue_batch,
    session_factory,
    voucher_item,
)
from tests.factories.redemptions import claim, decide, moved_clock, refund, settle, sweep

CATEGORIES = ["leadership", "fundraising", "governance", "digital_skills", "marketing"]
GROUPS = {  # name -> (group type, origin country, women-led)
    "g1": ("hometown_association", "GH", False),
    "g2": ("womens_group", "NG", True),
    "g3": ("youth_group", "GH", True),
    "g4": ("professional_association", "NG", False),
    "g5": ("supplementary_school", "SO", False),
}
SUPPLIER_NAME = "=Sum Training Ltd"  # a name a spreadsheet would run as a formula
REPORT_COLUMNS = [
    "dimension",
    "key",
    "vouchers_issued",
    "amount_issued",
    "claimed",
    "captured",
    "settled",
    "returned",
    "redemption_rate",
    "claims",
    "feedback_count",
    "average_rating",
    "outcomes_product",
    "outcomes_process",
    "label",
]
GROUP_DIMENSIONS = ("women_led", "group_type", "origin_country")
CLAIM_DIMENSIONS = ("service_category", "supplier")


@dataclass
class Story:
    client: TestClient
    programme_id: str
    funder_id: str
    parties: dict[str, Party]
    admin: dict[str, str]
    suppliers: dict[str, Party] = field(default_factory=dict)


def give_feedback(
    client: TestClient, group: Party, redemption_id: str, rating: int, kind: str
) -> None:
    response = client.post(
        f"/v1/redemptions/{redemption_id}/feedback",
        headers=group.headers,
        json={"rating": rating, "outcome": "Treasurer trained", "outcome_kind": kind},
    )
    assert response.status_code == 201, response.text


def ok(response: httpx.Response) -> None:
    assert response.status_code in (200, 201), response.text


def tell_story(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Story:
    admin = admin_headers(client)
    parties = {kind: make_party(client, admin, kind) for kind in ("funder", "manager", "auditor")}
    parties["other_funder"] = make_party(client, admin, "funder")
    parties["other_manager"] = make_party(client, admin, "manager")
    for name, (group_type, origin, women_led) in GROUPS.items():
        parties[name] = make_party(
            client,
            admin,
            "group",
            name=f"Group {name}",
            group={"group_type": group_type, "origin_country": origin, "women_led": women_led},
        )
    s1 = make_party(
        client,
        admin,
        "supplier",
        name=SUPPLIER_NAME,
        supplier={"service_categories": ["leadership", "fundraising", "governance"]},
    )
    s2 = make_party(
        client,
        admin,
        "supplier",
        name="Digital Bridges",
        supplier={"service_categories": ["fundraising", "digital_skills"]},
    )
    s3 = make_party(
        client,
        admin,
        "supplier",
        name="Quiet Consulting",
        supplier={"service_categories": ["governance", "leadership"]},
    )
    funder, manager = parties["funder"], parties["manager"]
    programme = funded_programme(
        client,
        funder,
        1_000_000,
        service_categories=CATEGORIES,
        rules={"women_led_reserve_pct": 30},
        manager_ids=[manager.id],
        auditor_ids=[parties["auditor"].id],
    )
    pid = programme["id"]
    accredit(client, manager, pid, s1.id, ["leadership", "fundraising", "governance"])
    accredit(client, manager, pid, s2.id, ["fundraising", "digital_skills"])
    accredit(client, manager, pid, s3.id, ["governance"])
    g = {name: parties[name] for name in GROUPS}

    with moved_clock(monkeypatch) as clock:
        v1, v2, v3, v4, v5, v6 = issue_batch(
            client,
            manager,
            pid,
            [
                voucher_item(g["g1"].id, 100_000),
                voucher_item(g["g2"].id, 80_000),
                voucher_item(
                    g["g3"].id, 60_000, service_categories=["fundraising", "digital_skills"]
                ),
                voucher_item(g["g4"].id, 50_000),
                voucher_item(g["g5"].id, 40_000),
                voucher_item(g["g2"].id, 30_000),
            ],
        )
        soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        v7 = issue(client, funder, pid, g["g1"].id, 20_000, expires_at=soon)

        # Captured, part refunded, settled later; feedback.
        c1 = claim(client, s1, v1["code"], 30_000, "leadership")
        ok(decide(client, g["g1"], c1["id"], "confirm"))
        ok(refund(client, s1, c1["id"], 5_000))
        give_feedback(client, g["g1"], c1["id"], 5, "product")
        # Captured, never settled.
        c2 = claim(client, s2, v2["code"], 20_000, "fundraising")
        ok(decide(client, g["g2"], c2["id"], "confirm"))
        give_feedback(client, g["g2"], c2["id"], 3, "process")
        # Rejected; and one left pending (its value stays held).
        c3 = claim(client, s1, v3["code"], 10_000, "fundraising")
        ok(decide(client, g["g3"], c3["id"], "reject"))
        claim(client, s2, v3["code"], 15_000, "digital_skills")
        # Captured, part refunded, settled.
        c5 = claim(client, s1, v4["code"], 25_000, "governance")
        ok(decide(client, g["g4"], c5["id"], "confirm"))
        ok(refund(client, s1, c5["id"], 10_000))
        give_feedback(client, g["g4"], c5["id"], 4, "process")
        # Cancelled by the supplier.
        c6 = claim(client, s2, v5["code"], 12_000, "fundraising")
        ok(decide(client, s2, c6["id"], "cancel"))
        # A captured and a pending claim on v6, then v6 is revoked: its free value goes
        # back at once, the held claim's when it is rejected, and a later refund too.
        c7 = claim(client, s1, v6["code"], 8_000, "leadership")
        ok(decide(client, g["g2"], c7["id"], "confirm"))
        c8 = claim(client, s1, v6["code"], 7_000, "governance")
        ok(
            client.post(
                f"/v1/vouchers/{v6['id']}/revoke",
                headers=manager.headers,
                json={"reason": "group dissolved"},
            )
        )
        ok(decide(client, g["g2"], c8["id"], "reject"))
        ok(refund(client, s1, c7["id"], 3_000))
        give_feedback(client, g["g2"], c7["id"], 2, "product")
        # Settle s1, then s1 captures again (captured, not settled).
        ok(settle(client, funder, pid, s1.id))
        c9 = claim(client, s1, v1["code"], 10_000, "leadership")
        ok(decide(client, g["g1"], c9["id"], "confirm"))
        # v7 is spent in part, then expires.
        c10 = claim(client, s2, v7["code"], 5_000, "fundraising")
        ok(decide(client, g["g1"], c10["id"], "confirm"))
        give_feedback(client, g["g1"], c10["id"], 4, "product")
        clock.advance(timedelta(days=2))
        swept = sweep(client, manager, pid)
        ok(swept)
        assert swept.json()["expired_vouchers"] == 1

    return Story(client, pid, funder.id, parties, admin, {"s1": s1, "s2": s2, "s3": s3})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    tmp_path: Path = tmp_path_factory.mktemp("report")
    monkeypatch = pytest.MonkeyPatch()
    try:
        with client_on(str(request.param), request, tmp_path) as client:
            yield tell_story(client, monkeypatch)
    finally:
        monkeypatch.undo()


def get_report(story: Story, party: str = "auditor", **params: str) -> httpx.Response:
    response: httpx.Response = story.client.get(
        f"/v1/programmes/{story.programme_id}/report",
        headers=story.parties[party].headers,
        params=params,
    )
    return response


# --- the report recomputed from the journal and the claim rows ---------------------------


def _meta(value: Any) -> dict[str, Any]:
    """A transaction's metadata: a dict on PostgreSQL, JSON text on SQLite."""
    found: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return found


def _fraction(numerator: int, denominator: int, places: int) -> str | None:
    """numerator/denominator rounded half up, in integer arithmetic."""
    if denominator == 0:
        return None
    scale = 10**places
    q = (2 * numerator * scale + denominator) // (2 * denominator)
    return f"{q // scale}.{q % scale:0{places}d}"


def expected_report(story: Story) -> dict[str, Any]:
    """Every figure of the report, from plain SQL over the journal and the claim rows."""
    pid = story.programme_id
    budget_accounts = {
        f"programme:{pid}:unissued",
        f"programme:{pid}:women_led_reserve",
        f"funder:{story.funder_id}:EUR",
    }
    with session_factory(story.client)() as session:
        groups = {
            gid: ("women_led" if bool(wl) else "other", gtype, origin)
            for gid, wl, gtype, origin in session.execute(
                text(
                    "SELECT id, women_led, group_type, origin_country FROM accounts "
                    "WHERE kind = 'group'"
                )
            )
        }
        voucher_group: dict[str, str] = dict(
            session.execute(
                text("SELECT id, group_id FROM vouchers WHERE programme_id = :p"), {"p": pid}
            ).all()
        )
        claims = {
            row.id: row
            for row in session.execute(
                text(
                    "SELECT id, voucher_id, group_id, supplier_id, service_category, amount, "
                    "status, settlement_id FROM redemptions WHERE programme_id = :p"
                ),
                {"p": pid},
            )
        }
        postings = session.execute(
            text(
                "SELECT t.id, t.kind, t.metadata, p.account_code, p.amount "
                "FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id "
                "WHERE t.programme_id = :p ORDER BY p.id"
            ),
            {"p": pid},
        ).all()
        feedback = session.execute(
            text(
                "SELECT f.redemption_id, f.rating, f.outcome_kind FROM feedback f "
                "JOIN redemptions r ON r.id = f.redemption_id WHERE r.programme_id = :p"
            ),
            {"p": pid},
        ).all()
        # voucher -> spendable + held, from the balance rows
        still_on: defaultdict[str, int] = defaultdict(int)
        for code, balance in session.execute(
            text("SELECT code, balance FROM ledger_accounts WHERE code LIKE 'voucher:%'")
        ):
            voucher_id = code.split(":")[1]
            if voucher_id in voucher_group:
                still_on[voucher_id] += int(balance)
        reserve_balance = int(
            session.execute(
                text("SELECT balance FROM ledger_accounts WHERE code = :c"),
                {"c": f"programme:{pid}:women_led_reserve"},
            ).scalar_one()
        )

    issued: dict[str, int] = {}  # voucher -> amount, from the issue transactions
    payable_net: dict[str, int] = defaultdict(int)  # claim -> net on the supplier's payable
    returned: dict[str, int] = defaultdict(int)  # voucher -> value back to budget/funder
    paid_out = 0
    for _, kind, metadata, code, amount in postings:
        meta = _meta(metadata)
        if kind == "issue" and code.startswith("voucher:") and not code.endswith(":held"):
            issued[code.split(":")[1]] = int(amount)
        if ":payable:" in code and "redemption_id" in meta:
            payable_net[meta["redemption_id"]] += int(amount)
        if kind == "capture":
            assert "redemption_id" in meta  # every capture here follows a confirmation
        if kind == "settle" and ":paid:" in code:
            paid_out += int(amount)
        if kind in ("revoke", "expire", "void", "refund") and code in budget_accounts:
            if kind in ("revoke", "expire"):
                voucher_id = meta["voucher_id"]
            else:
                voucher_id = claims[meta["redemption_id"]].voucher_id
            returned[voucher_id] += int(amount)
    assert set(issued) == set(voucher_group)

    def slices_of_group(group_id: str) -> list[tuple[str, str]]:
        women, gtype, origin = groups[group_id]
        return [
            ("total", "all"),
            ("women_led", women),
            ("group_type", gtype),
            ("origin_country", origin),
        ]

    lines: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for dimension, key in [
        ("women_led", "women_led"),
        ("women_led", "other"),
        *(("service_category", c) for c in CATEGORIES),
        *(("supplier", s.id) for s in story.suppliers.values()),
    ]:
        lines[(dimension, key)]["claims"] += 0
    for voucher_id, amount in issued.items():
        for slice_ in slices_of_group(voucher_group[voucher_id]):
            lines[slice_]["vouchers_issued"] += 1
            lines[slice_]["amount_issued"] += amount
            lines[slice_]["returned"] += returned[voucher_id]
            lines[slice_]["still_on"] += still_on[voucher_id]
    for claim_row in claims.values():
        slices = [
            *slices_of_group(claim_row.group_id),
            ("service_category", claim_row.service_category),
            ("supplier", claim_row.supplier_id),
        ]
        net = payable_net[claim_row.id]
        for slice_ in slices:
            line = lines[slice_]
            if claim_row.status != "voided":
                line["claims"] += 1
                line["claimed"] += int(claim_row.amount)
            if claim_row.status == "captured":
                line["captured"] += net
                if claim_row.settlement_id is not None:
                    line["settled"] += net
    assert paid_out == lines[("total", "all")]["settled"]
    for redemption_id, rating, outcome_kind in feedback:
        claim_row = claims[redemption_id]
        for slice_ in [
            *slices_of_group(claim_row.group_id),
            ("service_category", claim_row.service_category),
            ("supplier", claim_row.supplier_id),
        ]:
            lines[slice_]["feedback_count"] += 1
            lines[slice_]["rating_sum"] += int(rating)
            lines[slice_][f"outcomes_{outcome_kind}"] += 1

    names = {s.id: SUPPLIER_NAME for s in [story.suppliers["s1"]]} | {
        story.suppliers["s2"].id: "Digital Bridges",
        story.suppliers["s3"].id: "Quiet Consulting",
    }

    def as_line(dimension: str, key: str) -> dict[str, Any]:
        f = lines[(dimension, key)]
        by_group = dimension not in CLAIM_DIMENSIONS
        if by_group:  # what was issued is still on the vouchers, captured or returned
            assert f["amount_issued"] == f["still_on"] + f["captured"] + f["returned"], key
        return {
            "dimension": dimension,
            "key": key,
            "label": names[key] if dimension == "supplier" else None,
            "vouchers_issued": f["vouchers_issued"] if by_group else None,
            "amount_issued": f["amount_issued"] if by_group else None,
            "claims": f["claims"],
            "claimed": f["claimed"],
            "captured": f["captured"],
            "settled": f["settled"],
            "returned": f["returned"] if by_group else None,
            "redemption_rate": _fraction(f["captured"], f["amount_issued"], 4)
            if by_group
            else None,
            "feedback_count": f["feedback_count"],
            "average_rating": _fraction(f["rating_sum"], f["feedback_count"], 2),
            "outcomes_product": f["outcomes_product"],
            "outcomes_process": f["outcomes_process"],
        }

    breakdowns = {
        dimension: [
            as_line(dimension, key) for key in sorted(k for d, k in list(lines) if d == dimension)
        ]
        for dimension in (*GROUP_DIMENSIONS, *CLAIM_DIMENSIONS)
    }
    women_amount = lines[("women_led", "women_led")]["amount_issued"]
    with session_factory(story.client)() as session:
        from_reserve = int(
            session.execute(
                text(
                    "SELECT coalesce(sum(v.reserve_amount), 0) FROM vouchers v "
                    "JOIN accounts a ON a.id = v.group_id "
                    "WHERE v.programme_id = :p AND a.women_led"
                ),
                {"p": pid},
            ).scalar_one()
        )
    return {
        "totals": as_line("total", "all"),
        "breakdowns": breakdowns,
        "women_led": {
            "amount_issued": women_amount,
            "share_of_issuance": _fraction(
                women_amount, lines[("total", "all")]["amount_issued"], 4
            ),
            "reserve_pct": 30,
            "issued_from_reserve": from_reserve,
            "reserve_balance": reserve_balance,
        },
    }


# --- the tests -----------------------------------------------------------------------


def test_report_equals_the_journal(story: Story) -> None:
    response = get_report(story)
    assert response.status_code == 200, response.text
    report = response.json()
    expected = expected_report(story)
    assert report["totals"] == expected["totals"]
    assert report["women_led"] == expected["women_led"]
    assert report["breakdowns"] == expected["breakdowns"]
    assert (report["programme_id"], report["currency"], report["status"]) == (
        story.programme_id,
        "EUR",
        "open",
    )


def test_report_matches_the_story_worked_by_hand(story: Story) -> None:
    """The same figures, counted from the story itself (see ``tell_story``)."""
    report = get_report(story).json()
    totals = report["totals"]
    assert totals["vouchers_issued"] == 7
    assert totals["amount_issued"] == 380_000
    # Not voided: c1 30k, c2 20k, the pending 15k, c5 25k, c7 8k, c9 10k, c10 5k.
    assert (totals["claims"], totals["claimed"]) == (7, 113_000)
    # Net of refunds: c1 25k, c2 20k, c5 15k, c7 5k, c9 10k, c10 5k.
    assert totals["captured"] == 80_000
    assert totals["settled"] == 45_000  # c1, c5 and c7, paid to s1
    # v6: 15k free at revocation + 7k hold released + 3k refunded after; v7: 15k at expiry.
    assert totals["returned"] == 40_000
    assert totals["redemption_rate"] == "0.2105"  # 80,000 / 380,000
    assert (totals["feedback_count"], totals["average_rating"]) == (5, "3.60")
    assert (totals["outcomes_product"], totals["outcomes_process"]) == (3, 2)

    women = {line["key"]: line for line in report["breakdowns"]["women_led"]}
    assert women["women_led"]["amount_issued"] == 170_000  # v2, v3, v6
    assert women["women_led"]["returned"] == 25_000
    assert women["other"]["amount_issued"] == 210_000
    assert report["women_led"] == {
        "amount_issued": 170_000,
        "share_of_issuance": "0.4474",
        "reserve_pct": 30,
        "issued_from_reserve": 170_000,
        # 300k ring-fenced, 170k drawn, v6's 25k back to the reserve first.
        "reserve_balance": 155_000,
    }
    origin = {line["key"]: line["amount_issued"] for line in report["breakdowns"]["origin_country"]}
    assert origin == {"GH": 180_000, "NG": 160_000, "SO": 40_000}

    categories = {line["key"]: line for line in report["breakdowns"]["service_category"]}
    assert list(categories) == sorted(CATEGORIES)
    assert categories["marketing"]["claims"] == 0
    assert categories["fundraising"]["captured"] == 25_000  # c2 20k + c10 5k
    assert categories["fundraising"]["amount_issued"] is None
    assert categories["fundraising"]["redemption_rate"] is None

    suppliers = {line["key"]: line for line in report["breakdowns"]["supplier"]}
    s1, s2, s3 = (story.suppliers[name].id for name in ("s1", "s2", "s3"))
    assert suppliers[s1]["settled"] == 45_000
    assert suppliers[s1]["captured"] == 55_000  # settled, and c9 after the settlement
    assert (suppliers[s1]["feedback_count"], suppliers[s1]["average_rating"]) == (3, "3.67")
    assert (suppliers[s2]["feedback_count"], suppliers[s2]["average_rating"]) == (2, "3.50")
    assert suppliers[s3]["claims"] == 0
    assert suppliers[s3]["average_rating"] is None
    assert suppliers[s3]["label"] == "Quiet Consulting"

    for dimension, lines in report["breakdowns"].items():
        for figure in ("claimed", "captured", "settled", "feedback_count"):
            assert sum(line[figure] for line in lines) == totals[figure], (dimension, figure)
        if dimension in GROUP_DIMENSIONS:
            for figure in ("vouchers_issued", "amount_issued", "returned"):
                assert sum(line[figure] for line in lines) == totals[figure], (dimension, figure)


def test_csv_has_a_header_and_the_same_figures(story: Story) -> None:
    report = get_report(story).json()
    response = get_report(story, "funder", format="csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == REPORT_COLUMNS
    lines = [report["totals"]] + [
        line
        for dimension in (*GROUP_DIMENSIONS, *CLAIM_DIMENSIONS)
        for line in report["breakdowns"][dimension]
    ]

    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    expected = [[cell(line[column]) for column in REPORT_COLUMNS] for line in lines]
    s1 = story.suppliers["s1"].id
    for row in expected:
        if row[:2] == ["supplier", s1]:
            row[-1] = "'" + SUPPLIER_NAME  # not run as a formula in a spreadsheet
    assert rows[1:] == expected
    assert rows[1][:2] == ["total", "all"]


def test_unknown_format_is_refused(story: Story) -> None:
    assert_problem(get_report(story, format="xlsx"), 422, "validation_error")


@pytest.mark.parametrize("party", ["funder", "manager", "auditor"])
def test_parties_read_the_report(story: Story, party: str) -> None:
    assert get_report(story, party).status_code == 200


@pytest.mark.parametrize("party", ["other_funder", "other_manager"])
def test_others_get_not_found(story: Story, party: str) -> None:
    assert_problem(get_report(story, party), 404, "not_found")


@pytest.mark.parametrize("party", ["g1", "s1", "admin"])
def test_groups_suppliers_and_the_operator_are_forbidden(story: Story, party: str) -> None:
    headers = (
        story.admin
        if party == "admin"
        else (story.suppliers[party] if party == "s1" else story.parties[party]).headers
    )
    response = story.client.get(f"/v1/programmes/{story.programme_id}/report", headers=headers)
    assert_problem(response, 403, "forbidden")


def test_unknown_programme_is_not_found(story: Story) -> None:
    response = story.client.get(
        "/v1/programmes/prg_01ARZ3NDEKTSV4RRFFQ69G5FAV/report",
        headers=story.parties["funder"].headers,
    )
    assert_problem(response, 404, "not_found")
