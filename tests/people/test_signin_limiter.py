"""Failed sign-ins are limited per email and per client address, in the database:
every process sees one count."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers
from tests.factories.people import PASSWORD, sign_in, sign_in_body
from tests.factories.programmes import assert_problem
from tests.factories.server import free_port
from tests.factories.sessions import add_human, https_client, session_clock
from tests.test_cli import CLI
from voucherledger.accounts.models import Account, Member
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.ids import new_id
from voucherledger.core.settings import Settings
from voucherledger.people.passwords import passwords_for
from voucherledger.people.session_models import SigninFailure, WebSession
from voucherledger.sweep.background import LEASE_NAME, LeaseHolder, housekeep

WRONG = "not the right password"


def test_five_failures_for_one_email_lock_it_for_the_window(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ExitStack() as stack:
        clock = stack.enter_context(session_clock(monkeypatch))
        first = stack.enter_context(https_client(settings, address="198.51.100.1"))
        party = make_party(first, admin_headers(first), "funder")
        human = add_human(first, party.id, "operator", email="Officer@Example.org")
        for attempt in range(5):
            # the case of the email does not make it another email
            email = human.email.upper() if attempt % 2 else human.email.lower()
            response = first.post("/v1/sessions", json=sign_in_body(email, WRONG))
            assert_problem(response, 401, "invalid_credentials")
        # the right password, from another address, is refused too now
        second = stack.enter_context(https_client(settings, address="198.51.100.2"))
        response = second.post("/v1/sessions", json=sign_in_body(human.email))
        assert_problem(response, 429, "rate_limited")
        assert response.headers["retry-after"] == str(15 * 60)
        # refused attempts are not counted again: the five are still all there are
        factory = first.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as session:
            assert session.execute(select(func.count(SigninFailure.id))).scalar_one() == 5
        # another email from that address is not locked by it
        other = add_human(first, party.id, "operator")
        sign_in(second, other.email)
        # the window slides: once the failures are 15 minutes old, sign-in works
        clock.advance(timedelta(minutes=15, seconds=1))
        sign_in(second, human.email)


def test_five_failures_from_one_address_lock_it_for_any_email(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ExitStack() as stack:
        stack.enter_context(session_clock(monkeypatch))
        guesser = stack.enter_context(https_client(settings, address="192.0.2.66"))
        party = make_party(guesser, admin_headers(guesser), "funder")
        human = add_human(guesser, party.id, "operator")
        for n in range(5):  # five different emails, none of them real
            response = guesser.post("/v1/sessions", json=sign_in_body(f"x{n}@example.org", WRONG))
            assert_problem(response, 401, "invalid_credentials")
        response = guesser.post("/v1/sessions", json=sign_in_body(human.email))
        assert_problem(response, 429, "rate_limited")
        # the member signs in from elsewhere
        elsewhere = stack.enter_context(https_client(settings, address="192.0.2.1"))
        sign_in(elsewhere, human.email)


def test_the_limit_and_window_are_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = settings.model_copy(
        update={"signin_failure_limit": 2, "signin_failure_window_minutes": 1}
    )
    with https_client(strict) as client, session_clock(monkeypatch) as clock:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        for _ in range(2):
            client.post("/v1/sessions", json=sign_in_body(human.email, WRONG))
        response = client.post("/v1/sessions", json=sign_in_body(human.email))
        assert_problem(response, 429, "rate_limited")
        assert response.headers["retry-after"] == "60"
        clock.advance(timedelta(seconds=61))
        sign_in(client, human.email)


def test_only_failures_stay_counted(settings: Settings) -> None:
    """Every attempt is counted before it is verified; a sign-in, ``totp_required`` and
    ``account_required`` take their count back, a wrong password keeps it."""
    with https_client(settings) as client:
        admin = admin_headers(client)
        factory = client.app.state.session_factory  # type: ignore[attr-defined]

        def counted() -> int:
            with factory() as session:
                return int(session.execute(select(func.count(SigninFailure.id))).scalar_one())

        funder = make_party(client, admin, "funder")
        group = make_party(client, admin, "group")
        email = "twice@example.org"
        add_human(client, funder.id, "operator", email=email)
        add_human(client, group.id, "operator", email=email)
        second = add_human(client, funder.id, "approver")
        with transaction(factory) as session:
            member = session.get(Member, second.person.id)
            assert member is not None
            member.totp_secret, member.totp_confirmed_at = "JBSWY3DPEHPK3PXP", utcnow()

        assert_problem(
            client.post("/v1/sessions", json=sign_in_body(email)), 409, "account_required"
        )
        response = client.post("/v1/sessions", json=sign_in_body(second.email))
        assert_problem(response, 401, "totp_required")
        sign_in(client, email, account_id=group.id)
        assert counted() == 0
        response = client.post("/v1/sessions", json=sign_in_body(email, WRONG))
        assert_problem(response, 401, "invalid_credentials")
        assert counted() == 1


def test_the_sweep_purges_old_failures_and_ended_sessions(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    now = utcnow()
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        live = sign_in(client, human.email)
        with transaction(session_factory) as session:
            session.add_all(
                [
                    SigninFailure(email_key="a", failed_at=now - timedelta(hours=25)),
                    SigninFailure(email_key="b", failed_at=now - timedelta(minutes=1)),
                ]
            )
            session.add(
                WebSession(
                    id=new_id("ses"),
                    member_id=human.person.id,
                    account_id=party.id,
                    token_hash="0" * 64,
                    csrf_token="c",
                    created_at=now - timedelta(days=3),
                    last_seen_at=now - timedelta(days=3),
                    expires_at=now - timedelta(days=2),
                )
            )
        lease = LeaseHolder(session_factory, LEASE_NAME, holder="test", seconds=30)
        done = housekeep(session_factory, lease, idempotency_retention=timedelta(hours=24))
        assert done is not None
        assert (done.purged_signin_failures, done.purged_sessions) == (1, 1)
        with session_factory() as session:
            assert session.execute(select(SigninFailure.email_key)).scalars().all() == ["b"]
        assert client.get("/v1/me", headers=live.reads).status_code == 200


# --- two server processes on PostgreSQL -------------------------------------------------


@contextmanager
def _served(database_url: str, tmp_path: Path) -> Iterator[str]:
    """``voucherledger serve`` in a process of its own; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
    env |= {
        "VOUCHERLEDGER_DATABASE_URL": database_url,
        "VOUCHERLEDGER_SIGNING_KEY": "11" * 32,
        "VOUCHERLEDGER_SIGNING_KEY_FILE": str(tmp_path / "unused-key"),
        "VOUCHERLEDGER_SEALER_ENABLED": "false",
        "VOUCHERLEDGER_SWEEP_ENABLED": "false",
        "VOUCHERLEDGER_POOL_SIZE": "2",
        "VOUCHERLEDGER_SESSION_COOKIE_SECURE": "false",
        "VOUCHERLEDGER_PASSWORD_TIME_COST": "1",
        "VOUCHERLEDGER_PASSWORD_MEMORY_KIB": "8",
        "VOUCHERLEDGER_PASSWORD_PARALLELISM": "1",
    }
    process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(CLI), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not come up"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.slow
def test_two_server_processes_share_the_count(
    pg_only: str,
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    now = utcnow()
    email = "shared@example.org"
    with transaction(session_factory) as session:
        account = Account(id=new_id("acc"), kind="funder", name="A funder", created_at=now)
        session.add(account)
        session.flush()
        session.add(
            Member(
                id=new_id("mem"),
                account_id=account.id,
                email=email,
                email_key=email,
                name="Shared",
                role="operator",
                status="active",
                password_hash=passwords_for(settings).hash(PASSWORD),
                created_at=now,
            )
        )
    with (
        _served(settings.database_url, tmp_path) as one,
        _served(settings.database_url, tmp_path) as two,
    ):
        for attempt in range(5):
            base = one if attempt % 2 == 0 else two
            response = httpx.post(f"{base}/v1/sessions", json=sign_in_body(email, WRONG))
            assert response.status_code == 401, response.text
            assert response.json()["code"] == "invalid_credentials"
        for base in (one, two):
            response = httpx.post(f"{base}/v1/sessions", json=sign_in_body(email))
            assert response.status_code == 429, response.text
            assert response.json()["code"] == "rate_limited"
