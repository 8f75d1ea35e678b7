"""Delivery under faults: a send is over by its deadline even when the answer trickles
in; no fault of the receiver or of httpx escapes ``send``; a worker whose lease ran out
records nothing over the worker that took the delivery next; a retry is refused while a
delivery is in flight; secrets are never replayed; one rotation at a time; and the
address rules see through IPv6 translations."""

from __future__ import annotations

import ipaddress
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.programmes import assert_problem, session_factory
from tests.factories.webhooks import Clock, emit_for, receiver
from voucherledger.core import events
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.settings import Settings
from voucherledger.webhooks import deliver, urls
from voucherledger.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

BASE = "/v1/webhook-endpoints"


def _insecure(settings: Settings, **more: object) -> Settings:
    return settings.model_copy(
        update={"webhook_allow_insecure_urls": True, "webhook_timeout_seconds": 1.0, **more}
    )


def test_a_trickled_answer_ends_at_the_deadline(settings: Settings) -> None:
    """httpx's timeout is per read: headers arriving a line every 0.2 s for 8 s would
    keep the send alive for 8 s, past its lease, without the send's own deadline."""
    settings = _insecure(settings)
    with receiver("trickle") as got:
        got.delay = 8.0
        with deliver.make_client(settings) as client:
            started = time.monotonic()
            outcome = deliver.send(client, got.url, {}, b"{}", settings)
            took = time.monotonic() - started
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "timed out" in outcome.error
    assert took < 4.0, f"the send lasted {took:.1f} s, past its 1 s deadline"


def test_an_answer_with_connection_close_is_recorded(settings: Settings) -> None:
    settings = _insecure(settings)
    with receiver("close") as got, deliver.make_client(settings) as client:
        outcome = deliver.send(client, got.url, {}, b"{}", settings)
    assert (outcome.status_code, outcome.error) == (200, None)


class _GoneStream:
    def get_extra_info(self, name: str) -> Any:
        raise OSError(107, "Transport endpoint is not connected")


def test_a_peer_that_cannot_be_read_is_unknown_not_a_crash() -> None:
    response = httpx.Response(200, extensions={"network_stream": _GoneStream()})
    assert deliver._peer(response) is None


class _Broken(httpx.Client):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def send(self, *args: Any, **kwargs: Any) -> httpx.Response:
        raise self.error


@pytest.mark.parametrize(
    "error", [httpx.InvalidURL("bad"), RuntimeError("boom"), OSError(107, "not connected")]
)
def test_no_fault_of_the_transport_escapes_send(settings: Settings, error: Exception) -> None:
    settings = _insecure(settings)
    with _Broken(error) as client:
        outcome = deliver.send(client, "http://127.0.0.1:9/hook", {}, b"{}", settings)
    assert outcome.status_code is None
    assert outcome.error is not None
    assert type(error).__name__ in outcome.error


def _one_delivery(settings: Settings) -> Any:
    return settings.model_copy(update={"webhook_allow_insecure_urls": True})


def test_a_lease_lost_to_another_worker_records_only_the_attempt(settings: Settings) -> None:
    settings = _one_delivery(settings)
    clock = Clock()
    with client_for(settings) as client, receiver() as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        made = client.post(
            BASE, headers=funder.headers, json={"url": got.url, "event_types": ["*"]}
        )
        assert made.status_code == 201
        emit_for(factory, funder.id)
        events.sequence_pending(factory)
        deliver.fan_out(factory, clock())
        lease = timedelta(seconds=40)
        [first] = deliver.claim(factory, clock(), lease, 8)
        assert deliver.claim(factory, clock(), lease, 8) == []  # leased
        clock.move(seconds=41)  # the first worker is late: its lease ran out
        [second] = deliver.claim(factory, clock(), lease, 8)
        assert second.delivery_id == first.delivery_id
        late = deliver.Outcome(500, 10, "answered 500")
        assert deliver.record(factory, first, late, clock(), settings) is False
        with factory() as session:
            row = session.get_one(WebhookDelivery, first.delivery_id)
            assert (row.attempts, row.status, row.leased_until) == (
                0,
                "pending",
                second.leased_until,
            )
        ok = deliver.Outcome(200, 10, None)
        assert deliver.record(factory, second, ok, clock(), settings) is True
        with factory() as session:
            row = session.get_one(WebhookDelivery, first.delivery_id)
            assert (row.attempts, row.status, row.leased_until) == (1, "succeeded", None)
            attempts = session.execute(select(WebhookAttempt.status_code)).scalars().all()
            assert sorted(attempts, key=str) == [200, 500]


def test_a_retry_is_refused_while_the_delivery_is_in_flight(settings: Settings) -> None:
    settings = _one_delivery(settings)
    with client_for(settings) as client, receiver() as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        made = client.post(
            BASE, headers=funder.headers, json={"url": got.url, "event_types": ["*"]}
        )
        endpoint_id = made.json()["id"]
        emit_for(factory, funder.id)
        events.sequence_pending(factory)
        deliver.fan_out(factory, utcnow())
        [item] = deliver.claim(factory, utcnow(), timedelta(seconds=40), 8)
        path = f"{BASE}/{endpoint_id}/deliveries/{item.delivery_id}/retry"
        assert_problem(client.post(path, headers=funder.headers), 409, "delivery_in_flight")
        with factory() as session:  # the refusal wrote nothing
            row = session.get_one(WebhookDelivery, item.delivery_id)
            assert row.next_attempt_at == item.leased_until
        deliver.record(factory, item, deliver.Outcome(500, 5, "answered 500"), utcnow(), settings)
        retried = client.post(path, headers=funder.headers)
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "pending"


def test_a_replayed_create_or_rotation_does_not_show_the_secret(settings: Settings) -> None:
    with client_for(settings) as client:
        funder = make_party(client, admin_headers(client), "funder")
        headers = {**funder.headers, "Idempotency-Key": "create-endpoint-1"}
        body = {"url": "https://8.8.8.8/hook", "event_types": ["*"]}
        first = client.post(BASE, headers=headers, json=body)
        assert first.status_code == 201
        assert str(first.json()["secret"]).startswith("whsec_")
        replay = client.post(BASE, headers=headers, json=body)
        assert replay.status_code == 201
        assert replay.json()["id"] == first.json()["id"]
        assert replay.json()["secret"] is None
        path = f"{BASE}/{first.json()['id']}/rotate-secret"
        rotate = {**funder.headers, "Idempotency-Key": "rotate-1"}
        rotated = client.post(path, headers=rotate)
        assert str(rotated.json()["secret"]).startswith("whsec_")
        again = client.post(path, headers=rotate)
        assert again.status_code == 200
        assert again.json()["secret"] is None


def test_a_second_rotation_waits_for_the_first_overlap_to_end(settings: Settings) -> None:
    with client_for(settings) as client:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        made = client.post(
            BASE, headers=funder.headers, json={"url": "https://8.8.8.8/h", "event_types": ["*"]}
        ).json()
        path = f"{BASE}/{made['id']}/rotate-secret"
        first = client.post(path, headers=funder.headers).json()
        assert_problem(client.post(path, headers=funder.headers), 409, "rotation_in_progress")
        with factory() as session:
            row = session.get_one(WebhookEndpoint, made["id"])
            # Unchanged: the original secret still signs beside the first rotation's.
            assert (row.secret, row.previous_secret) == (first["secret"], made["secret"])
        with transaction(factory) as session:  # the day of overlap is over
            session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == made["id"])
                .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
            )
        second = client.post(path, headers=funder.headers)
        assert second.status_code == 200, second.text
        with factory() as session:
            row = session.get_one(WebhookEndpoint, made["id"])
            assert row.previous_secret == first["secret"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254
        ("2002:808:808::", True),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo, client 127.0.0.1
        ("::ffff:10.0.0.1", False),
        ("2606:4700:4700::1111", True),
        ("8.8.8.8", True),
    ],
)
def test_translated_ipv6_addresses_are_judged_by_their_ipv4(address: str, public: bool) -> None:
    assert urls.is_public(ipaddress.ip_address(address)) is public


def test_a_refusal_does_not_tell_the_address_a_name_resolves_to(settings: Settings) -> None:
    with client_for(settings) as client:
        group = make_party(client, admin_headers(client), "group")
        refused = client.post(
            BASE, headers=group.headers, json={"url": "https://localhost/h", "event_types": ["*"]}
        )
        assert_problem(refused, 422, "webhook_url_not_public")
        assert "127.0.0.1" not in refused.text
        assert "::1" not in refused.text
