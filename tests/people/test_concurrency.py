"""The last-owner rule under real concurrency (PostgreSQL): two owners demote each
other at once; exactly one may succeed, and the account keeps an active owner.

A real server in a thread; a blocking connection holds both owner rows until both
requests are provably waiting on them, so the two decisions overlap.
"""

from __future__ import annotations

import threading
import time

import httpx
import psycopg
import pytest
from sqlalchemy import select

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.people import add_member
from tests.factories.server import pg_dsn, running_server, waiting_on_locks
from voucherledger.accounts.models import Member
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow


def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    settings: Settings, pg_only: str
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        first = add_member(client, funder.id, "owner")
        second = add_member(client, funder.id, "owner")
        factory = client.app.state.session_factory  # type: ignore[attr-defined]

    dsn = pg_dsn(settings.database_url)
    answers: dict[str, httpx.Response] = {}

    def demote(name: str, base_url: str, headers: dict[str, str], member_id: str) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            answers[name] = http.patch(
                f"/v1/members/{member_id}", headers=headers, json={"role": "approver"}
            )

    with running_server(settings) as base_url:
        blocker = psycopg.connect(dsn)
        try:
            blocker.execute(
                "SELECT id FROM members WHERE id IN (%s, %s) FOR UPDATE", (first.id, second.id)
            )
            threads = [
                threading.Thread(
                    target=demote, args=("of first", base_url, second.headers, first.id)
                ),
                threading.Thread(
                    target=demote, args=("of second", base_url, first.headers, second.id)
                ),
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while waiting_on_locks(dsn) < 2:
                assert time.monotonic() < deadline, "the two demotions did not overlap"
                time.sleep(0.01)
        finally:
            blocker.rollback()
            blocker.close()
        for thread in threads:
            thread.join(60)

    statuses = sorted(r.status_code for r in answers.values())
    assert statuses == [200, 409], {k: r.text for k, r in answers.items()}
    refused = next(r for r in answers.values() if r.status_code == 409)
    assert refused.json()["code"] == "last_owner"
    with transaction(factory) as session:
        owners = session.execute(
            select(Member.id).where(
                Member.account_id == funder.id, Member.role == "owner", Member.status == "active"
            )
        ).all()
    assert len(owners) == 1
