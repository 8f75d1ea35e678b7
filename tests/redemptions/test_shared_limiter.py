"""The failed-code limit is shared by every process and node, and survives a restart.

Two apps built by ``create_app`` on one database stand for two server processes (or
two nodes): together they allow a supplier 10 failed look-ups a minute, not 10 each.
"""

from __future__ import annotations

from tests.factories.app import client_for
from tests.factories.programmes import assert_problem, issue
from tests.factories.redemptions import (
    claim_programme,
    make_cast,
    post_claim,
    unknown_code,
)
from voucherledger.core.settings import Settings


def test_two_processes_together_allow_ten_failures(settings: Settings) -> None:
    with client_for(settings) as first, client_for(settings) as second:
        c = make_cast(first)
        pid = claim_programme(first, c, accredit_for=(c.supplier,))["id"]
        code = issue(first, c.manager, pid, c.group.id, 5_000)["code"]
        for attempt in range(10):
            client = first if attempt % 2 == 0 else second
            assert_problem(post_claim(client, c.supplier, unknown_code(), 1), 404, "not_found")
        for client in (first, second):
            response = post_claim(client, c.supplier, code, 1)
            assert_problem(response, 429, "rate_limited")
            assert response.headers["retry-after"] == "60"


def test_a_restart_keeps_the_count(settings: Settings) -> None:
    with client_for(settings) as before:
        c = make_cast(before)
        pid = claim_programme(before, c, accredit_for=(c.supplier,))["id"]
        code = issue(before, c.manager, pid, c.group.id, 5_000)["code"]
        for _ in range(10):
            assert_problem(post_claim(before, c.supplier, unknown_code(), 1), 404, "not_found")
    with client_for(settings) as after:
        assert_problem(post_claim(after, c.supplier, code, 1), 429, "rate_limited")
