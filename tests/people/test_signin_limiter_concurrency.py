"""The sign-in limiter under concurrent requests: a burst of wrong guesses sent at once
gets at most ``limit`` verifications per window, the rest 429, for one email (from
many addresses) and for one address (with many emails).

A real server (uvicorn in a thread, its requests in its thread pool); the clients
release their requests together. uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1,
so each request can come from an address of its own. On SQLite the attempts
serialise on the write lock; the test runs there too and must finish.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.people import sign_in_body
from tests.factories.server import running_server
from tests.factories.sessions import add_human
from voucherledger.core.settings import Settings
from voucherledger.people.session_models import SigninFailure

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pg_connections")]

N = 20
LIMIT = 5
WRONG = "not the right password"


def _burst(settings: Settings, attempts: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send every ``(address, body)`` sign-in at once; the answers in that order."""
    barrier = threading.Barrier(len(attempts))

    def send(attempt: tuple[str, dict[str, Any]], base_url: str) -> httpx.Response:
        address, body = attempt
        with httpx.Client(base_url=base_url, timeout=120) as http:
            barrier.wait(timeout=60)
            return http.post("/v1/sessions", json=body, headers={"X-Forwarded-For": address})

    with running_server(settings) as base_url, ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(lambda attempt: send(attempt, base_url), attempts))


def _counted(settings: Settings) -> list[tuple[str, str | None]]:
    with client_for(settings) as client:
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as session:
            rows = session.execute(select(SigninFailure.email_key, SigninFailure.client_address))
            return [(email, address) for email, address in rows]


def _assert_limited(answers: list[httpx.Response]) -> int:
    """At most LIMIT guesses were verified (401), every other one refused (429);
    returns how many were verified."""
    statuses = sorted(answer.status_code for answer in answers)
    verified = statuses.count(401)
    assert verified <= LIMIT, statuses
    assert statuses.count(429) == N - verified, statuses
    for answer in answers:
        code = "invalid_credentials" if answer.status_code == 401 else "rate_limited"
        assert answer.json()["code"] == code
        if answer.status_code == 429:
            assert answer.headers["retry-after"] == str(15 * 60)
    return verified


@pytest.fixture
def concurrent_settings(settings: Settings) -> Settings:
    # Connections enough that the requests really overlap on PostgreSQL (up to 20).
    return settings.model_copy(update={"pool_size": N // 2, "signin_failure_limit": LIMIT})


def test_concurrent_wrong_passwords_for_one_email_verify_at_most_the_limit(
    concurrent_settings: Settings,
) -> None:
    with client_for(concurrent_settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator", email="burst@example.org")
    # every guess from an address of its own: only the email's count can stop them
    attempts = [(f"198.51.100.{n + 1}", sign_in_body(human.email, WRONG)) for n in range(N)]
    answers = _burst(concurrent_settings, attempts)
    verified = _assert_limited(answers)
    # the verified guesses are counted, the refused ones are not
    counted = _counted(concurrent_settings)
    assert len(counted) == verified
    assert {email for email, _ in counted} <= {human.email}
    assert len({address for _, address in counted}) == verified


def test_concurrent_guesses_from_one_address_verify_at_most_the_limit(
    concurrent_settings: Settings,
) -> None:
    # a different email each (none of them a member): only the address's count stops them
    attempts = [("192.0.2.66", sign_in_body(f"guess{n}@example.org", WRONG)) for n in range(N)]
    answers = _burst(concurrent_settings, attempts)
    verified = _assert_limited(answers)
    counted = _counted(concurrent_settings)
    assert len(counted) == verified
    assert {address for _, address in counted} <= {"192.0.2.66"}
