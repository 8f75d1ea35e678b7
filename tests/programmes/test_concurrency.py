"""Issuance under real concurrency (PostgreSQL): 16 issuers, one programme.

A real uvicorn server in a thread, 16 client threads each with its own HTTP
connection. Each issuer's first request is held at the programme's row lock (a
blocking connection holds it) until all 16 are provably waiting on it, so the
requests overlap; the rest then race freely. Afterwards the programme's budget,
the women-led reserve and the per-group cap must hold exactly as if the requests
had run one at a time, and the ledger must balance.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.ledger import ledger_violations
from tests.factories.server import pg_dsn, running_server, waiting_on_locks
from voucherledger import chart, ledger
from voucherledger.core.db import create_db_engine, create_session_factory
from voucherledger.core.settings import Settings
from voucherledger.vouchers.models import Voucher

ISSUERS = 16
REQUESTS_PER_ISSUER = 8
CATEGORIES = ["leadership", "fundraising"]

# Up to ISSUERS + 4 connections at once: one test of the group at a time (see conftest).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pg_connections")]


@dataclass
class Outcome:
    issuer: int
    asked: list[dict[str, Any]]
    status: int
    body: dict[str, Any]


@dataclass
class Programme:
    id: str
    issuers: list[Party]
    groups: list[Party] = field(default_factory=list)


def set_up(
    settings: Settings,
    *,
    deposit: int,
    rules: dict[str, Any],
    groups: list[dict[str, Any]],
) -> Programme:
    """A funder and a manager (both may issue), the given groups, one funded programme."""
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        manager = make_party(client, admin, "manager")
        made = [make_party(client, admin, "group", group=profile) for profile in groups]
        created = client.post(
            "/v1/programmes",
            headers=funder.headers,
            json={
                "name": "Contested programme",
                "currency": "EUR",
                "service_categories": CATEGORIES,
                "rules": rules,
                "manager_ids": [manager.id],
            },
        )
        assert created.status_code == 201, created.text
        programme_id = created.json()["id"]
        funded = client.post(
            f"/v1/programmes/{programme_id}/deposits",
            headers=funder.headers,
            json={"amount": deposit, "reference": "grant"},
        )
        assert funded.status_code == 201, funded.text
    return Programme(programme_id, [funder, manager], made)


def issue_concurrently(
    settings: Settings,
    programme: Programme,
    plan: Callable[[int, random.Random], list[list[dict[str, Any]]]],
) -> list[Outcome]:
    """Run ``plan(issuer)`` (a list of requests, each a list of voucher items: one item is
    sent to the single endpoint, more to the batch endpoint) on 16 threads at once."""
    # ISSUERS + 4 connections at most (pool and as many again as overflow): every issuer
    # can hold one while it waits on the programme's row lock.
    settings = settings.model_copy(update={"pool_size": ISSUERS // 2 + 2})
    dsn = pg_dsn(settings.database_url)
    outcomes: list[Outcome] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(ISSUERS)

    def issuer(index: int, base_url: str) -> None:
        rng = random.Random(index)
        party = programme.issuers[index % len(programme.issuers)]
        path = f"/v1/programmes/{programme.id}/vouchers"
        try:
            with httpx.Client(base_url=base_url, headers=party.headers, timeout=120) as http:
                http.get("/healthz")  # open the connection before the barrier
                barrier.wait(timeout=30)
                for items in plan(index, rng):
                    if len(items) == 1:
                        response = http.post(path, json=items[0])
                    else:
                        response = http.post(f"{path}/batch", json={"vouchers": items})
                    with lock:
                        outcomes.append(
                            Outcome(index, items, response.status_code, response.json())
                        )
        except BaseException as exc:  # reported by the main thread
            with lock:
                failures.append(exc)

    with running_server(settings) as base_url:
        blocker = psycopg.connect(dsn)
        try:
            # Hold the programme row: every issuer's first request must queue on it.
            blocker.execute("SELECT id FROM programmes WHERE id = %s FOR UPDATE", (programme.id,))
            threads = [threading.Thread(target=issuer, args=(i, base_url)) for i in range(ISSUERS)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while waiting_on_locks(dsn) < ISSUERS:
                assert not failures, failures
                assert time.monotonic() < deadline, (
                    f"only {waiting_on_locks(dsn)} of {ISSUERS} issuers overlapped"
                )
                time.sleep(0.05)
        finally:
            blocker.rollback()
            blocker.close()
        for thread in threads:
            thread.join(timeout=300)
    assert not failures, failures
    assert len(outcomes) == sum(len(plan(i, random.Random(i))) for i in range(ISSUERS))
    return outcomes


def issued_items(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The vouchers of the 201 answers, as the API returned them."""
    vouchers: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.status == 201:
            vouchers.extend(outcome.body["data"] if "data" in outcome.body else [outcome.body])
    return vouchers


def read_back(settings: Settings, programme: Programme) -> tuple[list[Voucher], dict[str, int]]:
    """The programme's vouchers in issuance order and its balances, read from the database."""
    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        with create_session_factory(engine)() as session:
            assert ledger_violations(session) == []
            assert ledger.trial_balance(session).totals == {"EUR": 0}
            vouchers = list(
                session.execute(
                    select(Voucher).where(Voucher.programme_id == programme.id).order_by(Voucher.id)
                ).scalars()
            )
            accounts = ledger.balances(
                session,
                [chart.unissued(programme.id), chart.women_led_reserve(programme.id)],
            )
        return vouchers, accounts
    finally:
        engine.dispose()


def programme_balances(settings: Settings, programme: Programme) -> dict[str, int]:
    with client_for(settings) as client:
        response = client.get(
            f"/v1/programmes/{programme.id}", headers=programme.issuers[0].headers
        )
    assert response.status_code == 200, response.text
    balances: dict[str, int] = response.json()["balances"]
    assert balances["deposited"] == sum(v for k, v in balances.items() if k != "deposited")
    return balances


# --- the budget ------------------------------------------------------------------------


def test_16_issuers_never_over_commit_the_budget(pg_only: str, settings: Settings) -> None:
    budget = 20_000
    programme = set_up(settings, deposit=budget, rules={}, groups=[{}, {}, {}])
    group_ids = [g.id for g in programme.groups]

    def plan(_issuer: int, rng: random.Random) -> list[list[dict[str, Any]]]:
        # Singles and batches of 100..900 each: about 16 x 8 x 1,250 = 160,000 asked.
        return [
            [
                {"group_id": rng.choice(group_ids), "amount": rng.randrange(100, 1000, 100)}
                for _ in range(rng.choice([1, 1, 2, 3]))
            ]
            for _ in range(REQUESTS_PER_ISSUER)
        ]

    outcomes = issue_concurrently(settings, programme, plan)

    statuses = sorted({o.status for o in outcomes})
    assert set(statuses) <= {201, 409}, statuses
    refusals = [o for o in outcomes if o.status == 409]
    assert refusals, "the budget was never contested"
    for refusal in refusals:
        assert refusal.body["code"] == "insufficient_funds", refusal.body
    issued = issued_items(outcomes)
    total = sum(v["amount"] for v in issued)
    assert total <= budget
    # A refusal means the budget left was below that request's ask; nothing is ever
    # given back, so what is left at the end is below the largest ask of all.
    largest = max(sum(item["amount"] for item in o.asked) for o in refusals)
    assert budget - total < largest

    vouchers, accounts = read_back(settings, programme)
    assert sorted(v.id for v in vouchers) == sorted(v["id"] for v in issued)
    assert sum(v.amount for v in vouchers) == total
    assert len({v.code for v in vouchers}) == len(vouchers)
    assert accounts[chart.unissued(programme.id)] == budget - total >= 0
    balances = programme_balances(settings, programme)
    assert balances["deposited"] == budget
    assert balances["outstanding"] == total
    assert balances["unissued"] == budget - total
    assert balances["unissued_women_led_reserve"] == 0


# --- the women-led reserve and the per-group cap ----------------------------------------


def test_concurrent_women_led_issuance_keeps_the_reserve_and_the_group_cap(
    pg_only: str, settings: Settings
) -> None:
    deposit, reserve_pct, cap = 20_000, 40, 2_500
    programme = set_up(
        settings,
        deposit=deposit,
        rules={"women_led_reserve_pct": reserve_pct, "max_total_per_group": cap},
        groups=[{"women_led": True}] * 5 + [{"women_led": False}] * 4,
    )
    women_led = {g.id for g in programme.groups[:5]}
    group_ids = [g.id for g in programme.groups]
    reserve = deposit * reserve_pct // 100

    def plan(_issuer: int, rng: random.Random) -> list[list[dict[str, Any]]]:
        # Mostly to women-led groups: the reserve (8,000) runs dry, the five women-led
        # groups' caps (5 x 2,500) are hit, and the unissued budget (12,000) is contested.
        def item() -> dict[str, Any]:
            pool = sorted(women_led) if rng.random() < 0.7 else group_ids
            return {"group_id": rng.choice(pool), "amount": rng.randrange(100, 800, 50)}

        return [[item() for _ in range(rng.choice([1, 1, 2]))] for _ in range(REQUESTS_PER_ISSUER)]

    outcomes = issue_concurrently(settings, programme, plan)

    codes = {(o.status, o.body.get("code")) for o in outcomes if o.status != 201}
    assert codes <= {(409, "insufficient_funds"), (422, "limit_exceeded")}, codes
    assert (422, "limit_exceeded") in codes, "the group cap was never contested"
    assert all(o.status in (201, 409, 422) for o in outcomes)

    issued = issued_items(outcomes)
    vouchers, accounts = read_back(settings, programme)
    assert sorted(v.id for v in vouchers) == sorted(v["id"] for v in issued)

    per_group: dict[str, int] = {}
    for voucher in vouchers:
        per_group[voucher.group_id] = per_group.get(voucher.group_id, 0) + voucher.amount
    assert all(total <= cap for total in per_group.values()), per_group

    # Issuance is serialised by the programme's row lock and voucher ids sort by the
    # time they were made, so replaying the vouchers in id order must reproduce every
    # draw on the reserve: a women-led voucher takes from the reserve first (as much
    # as is left), nobody else ever touches it, and it never goes below zero.
    reserve_left = reserve
    for voucher in vouchers:
        if voucher.group_id in women_led:
            assert voucher.reserve_amount == min(voucher.amount, reserve_left), voucher.id
        else:
            assert voucher.reserve_amount == 0, voucher.id
        reserve_left -= voucher.reserve_amount
        assert reserve_left >= 0
    drawn = sum(v.reserve_amount for v in vouchers)
    assert accounts[chart.women_led_reserve(programme.id)] == reserve - drawn >= 0
    unissued_used = sum(v.amount - v.reserve_amount for v in vouchers)
    assert accounts[chart.unissued(programme.id)] == deposit - reserve - unissued_used >= 0

    balances = programme_balances(settings, programme)
    assert balances["deposited"] == deposit
    assert balances["outstanding"] == sum(v.amount for v in vouchers)
    assert balances["unissued_women_led_reserve"] == reserve - drawn
    assert balances["unissued"] == deposit - reserve - unissued_used
