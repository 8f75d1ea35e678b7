"""``Idempotency-Key`` on POST: replay, conflict, scope per account, concurrency."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.factories.accounts import account_body
from tests.factories.app import admin_headers, client_for
from tests.factories.server import running_server, waiting_on_locks
from voucherledger.accounts.models import Account
from voucherledger.core.idempotency import IdempotencyRecord
from voucherledger.core.settings import Settings

PROBLEM_JSON = "application/problem+json"


def count_accounts(client: TestClient, name: str | None = None) -> int:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    stmt = select(func.count()).select_from(Account)
    if name is not None:
        stmt = stmt.where(Account.name == name)
    with factory() as session:
        return int(session.execute(stmt).scalar_one())


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def test_a_retry_replays_the_first_response_and_creates_one_account(
    settings: Settings,
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        body = account_body("group", name="Hometown association")
        first = client.post("/v1/accounts", headers=keyed(admin, "create-group-1"), json=body)
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        # The same JSON with other key order and spacing is the same request.
        again = client.post(
            "/v1/accounts",
            headers={**keyed(admin, "create-group-1"), "Content-Type": "application/json"},
            content=b'{"group": {"women_led": false, "residence_country": "GB", '
            b'"origin_country": "GH", "group_type": "hometown_association"},'
            b'   "name": "Hometown association", "kind": "group"}',
        )
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["idempotent-replayed"] == "true"
        assert count_accounts(client, "Hometown association") == 1
        # Without a key, the same body makes another account.
        assert client.post("/v1/accounts", headers=admin, json=body).status_code == 201
        assert count_accounts(client, "Hometown association") == 2


def test_a_replay_survives_later_changes(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        first = client.post("/v1/accounts", headers=keyed(admin, "k"), json=account_body("funder"))
        key_response = client.post(f"/v1/accounts/{first.json()['id']}/keys", headers=admin)
        assert key_response.status_code == 201
        again = client.post("/v1/accounts", headers=keyed(admin, "k"), json=account_body("funder"))
        assert again.json() == first.json()


def test_the_same_key_with_another_body_is_409(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        first = client.post(
            "/v1/accounts", headers=keyed(admin, "k1"), json=account_body("funder", name="First")
        )
        assert first.status_code == 201
        for body in (account_body("funder", name="Second"), account_body("manager", name="First")):
            response = client.post("/v1/accounts", headers=keyed(admin, "k1"), json=body)
            assert response.status_code == 409, response.text
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["code"] == "idempotency_key_reused"
        # The same key on another endpoint is another request too.
        other = client.post(f"/v1/accounts/{first.json()['id']}/keys", headers=keyed(admin, "k1"))
        assert other.status_code == 409
        assert other.json()["code"] == "idempotency_key_reused"
        assert count_accounts(client, "Second") == 0
        # The original is still replayed.
        again = client.post(
            "/v1/accounts", headers=keyed(admin, "k1"), json=account_body("funder", name="First")
        )
        assert again.content == first.content


def test_keys_are_scoped_to_the_calling_account(settings: Settings) -> None:
    with client_for(settings) as client:
        alice = admin_headers(client, "Alice")
        bob = admin_headers(client, "Bob")
        body = account_body("funder", name="Shared key")
        by_alice = client.post("/v1/accounts", headers=keyed(alice, "shared"), json=body)
        by_bob = client.post("/v1/accounts", headers=keyed(bob, "shared"), json=body)
        assert by_alice.status_code == by_bob.status_code == 201
        assert by_alice.json()["id"] != by_bob.json()["id"]
        assert "idempotent-replayed" not in by_bob.headers
        assert count_accounts(client, "Shared key") == 2
        # Bob's other body under the same key is his business, not a clash with Alice's.
        clash = client.post(
            "/v1/accounts", headers=keyed(bob, "shared"), json=account_body("manager")
        )
        assert clash.status_code == 409
        assert (
            client.post("/v1/accounts", headers=keyed(alice, "shared"), json=body).json()
            == by_alice.json()
        )


@pytest.mark.parametrize(
    ("key", "status"),
    [("a", 201), ("k" * 255, 201), ("k" * 256, 422), ("k" * 1000, 422)],
    ids=["1 char", "255 chars", "256 chars", "1000 chars"],
)
def test_key_length_is_1_to_255(settings: Settings, key: str, status: int) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        response = client.post(
            "/v1/accounts", headers=keyed(admin, key), json=account_body("funder", name="Length")
        )
        assert response.status_code == status, response.text
        if status == 422:
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["code"] == "validation_error"
            assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
        assert count_accounts(client, "Length") == (1 if status == 201 else 0)


def test_a_failed_request_does_not_burn_the_key(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        bad = client.post(
            "/v1/accounts", headers=keyed(admin, "retry-me"), json={"kind": "funder", "name": ""}
        )
        assert bad.status_code == 422
        missing = client.post(
            "/v1/accounts/acc_01ARZ3NDEKTSV4RRFFQ69G5FAV/keys", headers=keyed(admin, "retry-me-too")
        )
        assert missing.status_code == 404
        good = client.post(
            "/v1/accounts",
            headers=keyed(admin, "retry-me"),
            json=account_body("funder", name="Fixed"),
        )
        assert good.status_code == 201, good.text
        assert "idempotent-replayed" not in good.headers
        # Nothing of the failed requests was kept.
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as session:
            keys = set(session.execute(select(IdempotencyRecord.key)).scalars())
        assert keys == {"retry-me"}


def test_a_refused_role_does_not_burn_the_key(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder_id = client.post("/v1/accounts", headers=admin, json=account_body("funder")).json()[
            "id"
        ]
        funder_key = client.post(f"/v1/accounts/{funder_id}/keys", headers=admin).json()["key"]
        funder = {"Authorization": f"Bearer {funder_key}"}
        refused = client.post(
            "/v1/accounts", headers=keyed(funder, "x"), json=account_body("funder")
        )
        assert refused.status_code == 403
        assert (
            client.post(
                "/v1/accounts", headers=keyed(funder, "x"), json=account_body("funder")
            ).status_code
            == 403
        )


def test_a_keyed_key_creation_does_not_store_the_plaintext_key(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        account_id = client.post("/v1/accounts", headers=admin, json=account_body("funder")).json()[
            "id"
        ]
        created = client.post(f"/v1/accounts/{account_id}/keys", headers=keyed(admin, "kk"))
        assert created.status_code == 201
        secret = created.json()["key"].rsplit("_", 1)[1]
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as session:
            stored = list(session.execute(select(IdempotencyRecord.response_body)).scalars())
        assert not any(secret in (body or "") for body in stored)
        replay = client.post(f"/v1/accounts/{account_id}/keys", headers=keyed(admin, "kk"))
        assert replay.status_code == 201
        assert replay.json() == {**created.json(), "key": None}


# --- real concurrency (PostgreSQL) -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("pg_connections")
def test_concurrent_retries_create_one_account(pg_only: str, settings: Settings) -> None:
    workers = 10
    # workers + 2 connections at most (pool and overflow): each request can hold one.
    settings = settings.model_copy(update={"pool_size": workers // 2 + 1})
    dsn = (
        make_url(settings.database_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    with client_for(settings) as setup:
        admin = keyed(admin_headers(setup), "concurrent-1")
    body = account_body("supplier", name="Concurrent supplier")
    results: list[httpx.Response | BaseException] = []
    results_lock = threading.Lock()

    def send(base_url: str) -> None:
        outcome: httpx.Response | BaseException
        try:
            with httpx.Client(base_url=base_url, timeout=60) as http:
                outcome = http.post("/v1/accounts", headers=admin, json=body)
        except BaseException as exc:
            outcome = exc
        with results_lock:
            results.append(outcome)

    with running_server(settings) as base_url:
        # Hold the accounts table so that whichever request claims the key first
        # cannot finish: all ten are then provably in flight at once — one waiting
        # to insert its account, nine waiting on its idempotency record.
        blocker = psycopg.connect(dsn)
        try:
            blocker.execute("LOCK TABLE accounts IN EXCLUSIVE MODE")
            threads = [threading.Thread(target=send, args=(base_url,)) for _ in range(workers)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while waiting_on_locks(dsn) < workers:
                assert time.monotonic() < deadline, (
                    f"only {waiting_on_locks(dsn)} of {workers} requests overlapped"
                )
                time.sleep(0.05)
        finally:
            blocker.rollback()
            blocker.close()
        for thread in threads:
            thread.join(timeout=60)

    assert len(results) == workers
    responses: list[httpx.Response] = []
    for result in results:
        assert isinstance(result, httpx.Response), repr(result)
        responses.append(result)
    assert [r.status_code for r in responses] == [201] * workers, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    replayed = [r.headers.get("idempotent-replayed") for r in responses]
    assert replayed.count("true") == workers - 1
    created: dict[str, Any] = responses[0].json()
    with client_for(settings) as check:
        assert count_accounts(check, "Concurrent supplier") == 1
        factory = check.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as session:
            stored = session.execute(
                select(Account.id).where(Account.name == "Concurrent supplier")
            ).scalar_one()
        assert stored == created["id"]
