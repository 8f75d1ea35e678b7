"""Delivery to a real receiver on 127.0.0.1: signed (Standard Webhooks), retried on
the documented schedule, failed after ``webhook_retry_hours``, the endpoint disabled
with an event; redirects not followed, answers capped, rotation signing twice."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks import Webhook

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.programmes import session_factory
from tests.factories.server import free_port
from tests.factories.webhooks import Clock, Receiver, emit_for, receiver
from voucherledger.core import events
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings
from voucherledger.webhooks import deliver
from voucherledger.webhooks.deliver import backoff, deliver_due
from voucherledger.webhooks.models import WebhookAttempt, WebhookDelivery

BASE = "/v1/webhook-endpoints"


def _insecure(settings: Settings, **more: object) -> Settings:
    return settings.model_copy(
        update={"webhook_allow_insecure_urls": True, "webhook_timeout_seconds": 2.0, **more}
    )


def _endpoint(client: TestClient, party: Party, url: str) -> dict[str, object]:
    made = client.post(BASE, headers=party.headers, json={"url": url, "event_types": ["*"]})
    assert made.status_code == 201, made.text
    body: dict[str, object] = made.json()
    return body


def _deliveries(client: TestClient, party: Party, endpoint_id: object) -> list[dict[str, object]]:
    got = client.get(f"{BASE}/{endpoint_id}/deliveries", headers=party.headers)
    assert got.status_code == 200, got.text
    data: list[dict[str, object]] = got.json()["data"]
    return data


def _verify(secret: str, got: Receiver) -> None:
    for request in got.requests:
        Webhook(secret).verify(request.body, request.headers)


def test_events_are_delivered_signed_once_each(settings: Settings) -> None:
    settings = _insecure(settings)
    with client_for(settings) as client, receiver() as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        emit_for(factory, funder.id, 1)  # before the endpoint: not delivered
        events.sequence_pending(factory)
        endpoint = _endpoint(client, funder, got.url)
        ids = emit_for(factory, funder.id, 3)
        other = make_party(client, admin_headers(client, "Other"), "group")
        emit_for(factory, other.id, 2)  # not the funder's
        assert deliver_due(factory, settings) == 3
        assert deliver_due(factory, settings) == 0
        assert sorted(r.headers["webhook-id"] for r in got.requests) == sorted(ids)
        _verify(str(endpoint["secret"]), got)
        first = next(r for r in got.requests if r.headers["webhook-id"] == ids[0])
        assert first.headers["content-type"] == "application/json"
        assert first.headers["user-agent"].startswith("voucherledger/")
        event = json.loads(first.body)
        assert event["id"] == ids[0]
        assert event["type"] == "programme.updated"
        assert b" " not in first.body  # compact JSON
        rows = _deliveries(client, funder, endpoint["id"])
        assert {r["status"] for r in rows} == {"succeeded"}
        assert all(r["last_status_code"] == 200 and r["attempts"] == 1 for r in rows)
        assert _deliveries(client, funder, endpoint["id"]) == rows
        only = client.get(
            f"{BASE}/{endpoint['id']}/deliveries?status=pending", headers=funder.headers
        ).json()["data"]
        assert only == []


def test_after_rotation_both_secrets_sign_for_a_day(settings: Settings) -> None:
    settings = _insecure(settings)
    clock = Clock()
    with client_for(settings) as client, receiver() as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        endpoint = _endpoint(client, funder, got.url)
        old = str(endpoint["secret"])
        new = client.post(f"{BASE}/{endpoint['id']}/rotate-secret", headers=funder.headers).json()[
            "secret"
        ]
        emit_for(factory, funder.id)
        deliver_due(factory, settings, clock=clock)
        signatures = got.requests[0].headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        _verify(old, got)
        _verify(new, got)
        clock.move(hours=25)
        emit_for(factory, funder.id)
        deliver_due(factory, settings, clock=clock)
        last = got.requests[-1]
        assert len(last.headers["webhook-signature"].split(" ")) == 1
        Webhook(new).verify(last.body, last.headers)
        with pytest.raises(Exception, match="signature"):
            Webhook(old).verify(last.body, last.headers)


@pytest.mark.parametrize("failure", ["fail", "slow", "refused"])
def test_failures_are_retried_on_schedule_then_fail_and_disable(
    settings: Settings, failure: str
) -> None:
    settings = _insecure(settings, webhook_retry_hours=2.0, webhook_timeout_seconds=0.5)
    clock = Clock()
    with client_for(settings) as client, receiver(failure) as got:
        got.delay = 2.0
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        url = f"http://127.0.0.1:{free_port()}/closed" if failure == "refused" else got.url
        endpoint = _endpoint(client, funder, url)
        emit_for(factory, funder.id)
        assert deliver_due(factory, settings, clock=clock) == 1
        with factory() as session:
            delivery = session.execute(select(WebhookDelivery)).scalar_one()
            assert delivery.status == "pending"
            assert delivery.attempts == 1
            wait = delivery.next_attempt_at - clock()  # type: ignore[operator]
            assert timedelta(seconds=24) <= wait <= timedelta(seconds=36)
        assert deliver_due(factory, settings, clock=clock) == 0  # not due yet
        attempts = 1
        while True:
            clock.move(hours=1)
            made = deliver_due(factory, settings, clock=clock)
            attempts += made
            if made == 0:
                break
        with factory() as session:
            delivery = session.execute(select(WebhookDelivery)).scalar_one()
            assert delivery.status == "failed"
            assert delivery.attempts == attempts >= 3
            tries = session.execute(select(WebhookAttempt)).scalars().all()
            assert len(tries) == attempts
            assert all(t.status_code in (None, 500) for t in tries)
        shown = client.get(f"{BASE}/{endpoint['id']}", headers=funder.headers).json()
        assert shown["enabled"] is False
        assert shown["disabled_reason"]
        with factory() as session:
            events.sequence_pending(factory)
            disabled = events.list_events(
                session,
                readers=events.readers_of(funder.id, "funder"),
                after_sequence=0,
                limit=100,
                types=["webhook_endpoint.disabled"],
            )
        assert [e.data["object"]["id"] for e in disabled] == [endpoint["id"]]
        assert "secret" not in disabled[0].data["object"]
        # Retry of a failed one: pending and due now; re-enabling clears the reason.
        delivery_id = _deliveries(client, funder, endpoint["id"])[0]["id"]
        retried = client.post(
            f"{BASE}/{endpoint['id']}/deliveries/{delivery_id}/retry", headers=funder.headers
        )
        assert retried.json()["status"] == "pending"
        again = client.patch(
            f"{BASE}/{endpoint['id']}", headers=funder.headers, json={"enabled": True}
        )
        assert again.json()["failing_since"] is None
        assert again.json()["disabled_reason"] is None
        got.mode = "ok"
        if failure != "refused":
            assert deliver_due(factory, settings) >= 1
            assert _deliveries(client, funder, endpoint["id"])[0]["status"] == "succeeded"


def test_the_backoff_schedule() -> None:
    for n, base in [(1, 30), (2, 60), (3, 120), (10, 30 * 512), (11, 6 * 3600), (40, 6 * 3600)]:
        wait = backoff(n).total_seconds()
        assert base * 0.8 <= wait <= base * 1.2


def test_a_redirect_is_not_followed_and_an_answer_is_capped(settings: Settings) -> None:
    settings = _insecure(settings, webhook_max_response_bytes=1000)
    with client_for(settings) as client, receiver("redirect") as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        endpoint = _endpoint(client, funder, got.url)
        emit_for(factory, funder.id)
        deliver_due(factory, settings)
        assert [r.path for r in got.requests] == ["/hook"]
        row = _deliveries(client, funder, endpoint["id"])[0]
        assert row["status"] == "pending"
        assert row["last_status_code"] == 302
        assert "not followed" in str(row["last_error"])
        got.mode = "big"
        client.post(f"{BASE}/{endpoint['id']}/deliveries/{row['id']}/retry", headers=funder.headers)
        deliver_due(factory, settings)
        row = _deliveries(client, funder, endpoint["id"])[0]
        assert row["status"] == "succeeded"


def test_a_private_address_is_refused_at_delivery_too(settings: Settings) -> None:
    loose = _insecure(settings)
    with client_for(loose) as client, receiver() as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        endpoint = _endpoint(client, funder, got.url)
        emit_for(factory, funder.id)
        strict = loose.model_copy(update={"webhook_allow_insecure_urls": False})
        deliver_due(factory, strict)
        assert got.requests == []
        row = _deliveries(client, funder, endpoint["id"])[0]
        assert row["last_status_code"] is None
        assert row["last_error"]


def test_purge_removes_old_deliveries(settings: Settings) -> None:
    settings = _insecure(settings)
    with client_for(settings) as client, receiver() as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        _endpoint(client, funder, got.url)
        emit_for(factory, funder.id, 2)
        deliver_due(factory, settings)
        clock = Clock()
        assert deliver.purge(factory, clock() - timedelta(days=30)) == 0
        assert deliver.purge(factory, clock() + timedelta(seconds=1)) == 2
        with factory() as session:
            assert session.execute(select(WebhookAttempt)).first() is None


def test_each_event_type_reaches_an_endpoint_subscribed_to_it(settings: Settings) -> None:
    """Emitted directly here: the API-triggered version of every type follows the
    emission of every type (issue 13 §1)."""
    settings = _insecure(settings)
    with client_for(settings) as client, receiver() as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        for event_type in events.EVENT_TYPES:
            made = client.post(
                BASE,
                headers=funder.headers,
                json={"url": f"{got.url}?t={event_type}", "event_types": [event_type]},
            )
            assert made.status_code == 201, made.text
        with transaction(factory) as session:
            for event_type in events.EVENT_TYPES:
                events.emit(session, event_type, {"object": {}}, account_ids=[funder.id])
        deliver_due(factory, settings)
        seen = sorted((r.path, json.loads(r.body)["type"]) for r in got.requests)
        assert seen == sorted((f"/hook?t={t}", t) for t in events.EVENT_TYPES)
