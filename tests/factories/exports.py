"""A full programme story told through the API, for the open-standard export tests,
with what each step moved kept aside so the tests can check the export's figures
against it; and the official schemas those exports must validate against."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.programmes import (
    accredit,
    client_on,
    deposit,
    funded_programme,
    get_programme,
    issue,
    issue_batch,
    session_factory,
    voucher_item,
)
from tests.factories.redemptions import claim, decide, moved_clock, refund, settle, sweep
from voucherledger.ledger.models import JournalTransaction

# The read-only reference data beside the clone (../shared/data), as CI lays it out.
SHARED_DATA = Path(__file__).resolve().parents[1] / "data"  # copies of shared/data
IATI_SCHEMA = SHARED_DATA / "iati-2.03" / "iati-activities-schema.xsd"
GIVING360_PACKAGE_SCHEMA = SHARED_DATA / "360giving" / "360-giving-package-schema.json"
GIVING360_GRANT_SCHEMA = SHARED_DATA / "360giving" / "360-giving-schema.json"

MAIN_CATEGORIES = [
    "leadership",
    "governance",
    "fundraising",
    "enterprise_development",
    "gender_mainstreaming",
]


def load_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@dataclass
class Story:
    """What the story did, as the API answered it. Amounts are minor units."""

    client: TestClient
    funder: Party
    manager: Party
    suppliers: dict[str, Party]
    groups: dict[str, Party]
    names: dict[str, str]  # account id -> name
    main: str  # EUR programme, 30% women-led reserve, managed, closed at the end
    side: str  # JPY programme, no reserve, no manager, still open
    deposits: dict[str, list[int]] = field(default_factory=dict)
    vouchers: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> API body
    settlements: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> API body
    # Value going back from vouchers (or the budget, at close) per journal transaction.
    decommitted: dict[str, int] = field(default_factory=dict)
    closed_at: datetime | None = None

    def voucher_ids(self, programme_id: str) -> list[str]:
        return sorted(
            vid for vid, body in self.vouchers.items() if body["programme_id"] == programme_id
        )


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _last_transaction(client: TestClient, kind: str) -> str:
    with session_factory(client)() as session:
        return session.execute(
            select(JournalTransaction.id)
            .where(JournalTransaction.kind == kind)
            .order_by(JournalTransaction.created_at.desc(), JournalTransaction.id.desc())
            .limit(1)
        ).scalar_one()


def _revoke(story: Story, voucher_id: str, left: int) -> None:
    ok(
        story.client.post(
            f"/v1/vouchers/{voucher_id}/revoke",
            headers=story.manager.headers,
            json={"reason": "group dissolved"},
        )
    )
    story.decommitted[_last_transaction(story.client, "revoke")] = left


def tell_story(client: TestClient, monkeypatch: pytest.MonkeyPatch, *, bulk: int = 0) -> Story:
    """Deposits, a batch issue (women-led groups included), claims confirmed, rejected
    and refunded (one in full), two settlements of one supplier and one of another, a
    revocation with nothing held, a revocation with a claim still held that is then
    rejected (its value goes back to the budget, not the voucher), an expiry after a
    sweep with a moved clock, and the programme's close; plus a second, JPY programme
    with ``bulk`` extra small vouchers."""
    admin = admin_headers(client)
    funder = make_party(client, admin, "funder", name="Fondation Diaspora & Développement")
    manager = make_party(client, admin, "manager", name="Umbrella <Network>")
    suppliers = {
        "s1": make_party(
            client,
            admin,
            "supplier",
            name="Boards Ltd",
            supplier={"service_categories": ["leadership", "governance", "fundraising"]},
        ),
        "s2": make_party(
            client,
            admin,
            "supplier",
            name="Enterprise Works",
            supplier={"service_categories": ["enterprise_development", "gender_mainstreaming"]},
        ),
    }
    profiles = {
        "g1": ("Kumasi Women's Association", "hometown_association", "GH", "GB", True),
        "g2": ("Dakar Alumni", "alumni_association", "SN", "FR", False),
        "g3": ("Somali Women Together", "womens_group", "SO", "NL", True),
        "g4": ("Lagos Traders Club", "investment_group", "NG", "DE", False),
    }
    groups = {
        key: make_party(
            client,
            admin,
            "group",
            name=name,
            group={
                "group_type": kind,
                "origin_country": origin,
                "residence_country": residence,
                "women_led": women_led,
            },
        )
        for key, (name, kind, origin, residence, women_led) in profiles.items()
    }
    names = {party.id: profiles[key][0] for key, party in groups.items()}
    names[funder.id] = "Fondation Diaspora & Développement"
    names[manager.id] = "Umbrella <Network>"
    names[suppliers["s1"].id] = "Boards Ltd"
    names[suppliers["s2"].id] = "Enterprise Works"

    ends_at = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    main = funded_programme(
        client,
        funder,
        1_000_000,
        name="Diaspora capacity 2026",
        service_categories=MAIN_CATEGORIES,
        rules={"women_led_reserve_pct": 30, "max_voucher_amount": 200_000},
        manager_ids=[manager.id],
        ends_at=ends_at,
    )["id"]
    side = funded_programme(
        client,
        funder,
        500_000,
        name="Small grants (JPY)",
        currency="JPY",
        service_categories=["leadership"],
    )["id"]
    story = Story(client, funder, manager, suppliers, groups, names, main, side)
    story.deposits = {main: [1_000_000], side: [500_000]}
    deposit(client, funder, main, 200_000, reference="top-up")
    story.deposits[main].append(200_000)
    accredit(client, manager, main, suppliers["s1"].id, ["leadership", "governance", "fundraising"])
    accredit(client, manager, main, suppliers["s2"].id, ["enterprise_development"])
    accredit(client, funder, side, suppliers["s1"].id, ["leadership"])
    s1, s2 = suppliers["s1"], suppliers["s2"]
    g1, g2, g3, g4 = (groups[k] for k in ("g1", "g2", "g3", "g4"))

    with moved_clock(monkeypatch) as clock:
        batch = issue_batch(
            client,
            manager,
            main,
            [
                voucher_item(g1.id, 100_000),
                voucher_item(g2.id, 80_000),
                voucher_item(g3.id, 60_000),
                voucher_item(g4.id, 50_000, service_categories=["enterprise_development"]),
                voucher_item(g2.id, 30_000),
            ],
        )
        v1, v2, v3, v4, v5 = batch
        soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        v6 = issue(client, funder, main, g1.id, 20_000, expires_at=soon)
        for made in [*batch, v6]:
            story.vouchers[made["id"]] = made

        # Captured and part refunded; captured; rejected; captured and refunded in full.
        c1 = claim(client, s1, v1["code"], 30_000, "leadership")
        ok(decide(client, g1, c1["id"], "confirm"))
        ok(refund(client, s1, c1["id"], 5_000))
        c2 = claim(client, s2, v4["code"], 20_000, "enterprise_development")
        ok(decide(client, g4, c2["id"], "confirm"))
        c3 = claim(client, s1, v3["code"], 10_000, "fundraising")
        ok(decide(client, g3, c3["id"], "reject"))
        c4 = claim(client, s1, v2["code"], 25_000, "governance")
        ok(decide(client, g2, c4["id"], "confirm"))
        ok(refund(client, s1, c4["id"], 25_000))
        c5 = claim(client, s1, v2["code"], 8_000, "governance")
        ok(decide(client, g2, c5["id"], "confirm"))
        for body in (
            ok(settle(client, funder, main, s1.id, "wire-1")),  # c1 net 25_000 + c5 8_000
            ok(settle(client, funder, main, s2.id, "wire-2")),  # c2 20_000
        ):
            story.settlements[body["id"]] = body
        # v1 is paid a second time, by a later settlement.
        c6 = claim(client, s1, v1["code"], 10_000, "leadership")
        ok(decide(client, g1, c6["id"], "confirm"))
        again = ok(settle(client, funder, main, s1.id, "wire-3"))
        story.settlements[again["id"]] = again

        # v5 revoked untouched; v3 revoked with a claim held, which is then rejected:
        # the held value goes back to the budget, not to the ended voucher.
        _revoke(story, v5["id"], 30_000)
        held = claim(client, s1, v3["code"], 15_000, "leadership")
        _revoke(story, v3["id"], 60_000 - 15_000)
        ok(decide(client, g3, held["id"], "reject"))
        story.decommitted[_last_transaction(client, "void")] = 15_000

        # v6 is spent in part, then expires in a sweep two days later.
        c7 = claim(client, s1, v6["code"], 5_000, "leadership")
        ok(decide(client, g1, c7["id"], "confirm"))
        clock.advance(timedelta(days=2))
        ok(sweep(client, manager, main))
        story.decommitted[_last_transaction(client, "expire")] = 15_000

    # The side programme: a voucher, and ``bulk`` more of 10 JPY.
    extra = [voucher_item(groups[f"g{1 + i % 4}"].id, 10) for i in range(bulk)]
    for made in issue_batch(client, funder, side, [voucher_item(g2.id, 2_500), *extra]):
        story.vouchers[made["id"]] = made

    # Close: what is left of the budget goes back to the funder.
    balances = get_programme(client, funder, main)["balances"]
    left = balances["unissued"] + balances["unissued_women_led_reserve"]
    ok(client.post(f"/v1/programmes/{main}/close", headers=funder.headers))
    close_id = _last_transaction(client, "close")
    story.decommitted[close_id] = left
    with session_factory(client)() as session:
        story.closed_at = session.get_one(JournalTransaction, close_id).created_at
    return story


@contextmanager
def story_on(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, *, bulk: int = 0
) -> Iterator[Story]:
    """The story told on a fresh database of ``backend``, for module-scoped fixtures."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        with client_on(backend, request, tmp_path) as client:
            yield tell_story(client, monkeypatch, bulk=bulk)
    finally:
        monkeypatch.undo()


def giving360_validator() -> Draft202012Validator:
    """The package schema, with the grant schema it references by URL served locally
    under that URL (and its own ``$id``), so validation needs no network. The files
    name their dialect ``http://json-schema.org/draft/2020-12/schema`` (not https),
    which ``referencing`` does not recognise: the dialect is given explicitly."""
    package = load_json(GIVING360_PACKAGE_SCHEMA)
    grant: Resource[Any] = DRAFT202012.create_resource(load_json(GIVING360_GRANT_SCHEMA))
    referenced = package["properties"]["grants"]["items"]["$ref"]
    registry: Registry[Any] = Registry().with_resources(
        [(referenced, grant), (grant.id() or referenced, grant)]
    )
    return Draft202012Validator(package, registry=registry, format_checker=FormatChecker())
