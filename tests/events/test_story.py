"""Every event type, emitted by real API calls in one story, read back from
``GET /v1/events`` (who reads which, resuming with ``after``, filters, refusals) and
delivered to a real webhook receiver on 127.0.0.1, every signature verified with the
``standardwebhooks`` library."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.conftest import BACKENDS, TEST_SIGNING_KEY, fresh_database, require_postgres
from tests.events.helpers import read_all, types_of
from tests.factories.accounts import Party, make_party
from tests.factories.app import client_for
from tests.factories.people import accept, invite
from tests.factories.programmes import accredit, deposit, issue_batch, session_factory, voucher_item
from tests.factories.redemptions import (
    CLOCKED_MODULES,
    Clock,
    claim,
    decide,
    feedback,
    issue_expiring,
    post_claim,
    refund,
)
from tests.factories.settlements import ApprovalWorld, approval_world, approve, propose, reject
from tests.factories.webhooks import Receiver, receiver
from voucherledger.core.events import EVENT_TYPES
from voucherledger.core.settings import Settings
from voucherledger.sweep.background import LEASE_NAME, LeaseHolder, housekeep
from voucherledger.webhooks.deliver import deliver_due
from voucherledger.webhooks.models import WebhookDelivery

# Emitted by the webhook worker when an endpoint has failed for days: see
# tests/webhooks/test_failures.py; every other type is emitted by this story.
ELSEWHERE = {"webhook_endpoint.disabled"}
STORY_TYPES = set(EVENT_TYPES) - ELSEWHERE


@dataclass(frozen=True)
class Story:
    client: TestClient
    world: ApprovalWorld
    stranger_supplier: Party
    ids: dict[str, str]  # what the story made, by name
    refused: Any  # the response to a claim over the voucher's value
    emitted_by_refusal: list[dict[str, Any]]
    hook: Receiver  # what the admin's webhook endpoint (every type) received
    secret: str


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def _tell(client: TestClient, hook: Receiver, settings: Settings) -> Story:
    w = approval_world(client)  # programme created, funded, supplier accredited, 1 voucher
    c, pid, people = w.cast, w.programme_id, w.people
    ids: dict[str, str] = {"programme": pid}
    # Nothing has been numbered yet, so the endpoint gets every event from the start.
    endpoint = _ok(
        client.post(
            "/v1/webhook-endpoints",
            headers=c.admin,
            json={"url": hook.url, "event_types": ["*"], "description": "story"},
        ),
        201,
    )
    deposit(client, c.funder, pid, 10_000)  # approval_world issued all it deposited
    batch = issue_batch(
        client, c.manager, pid, [voucher_item(c.group.id, 300), voucher_item(c.group.id, 200)]
    )
    ids["revoked_voucher"] = batch[0]["id"]
    expiring = issue_expiring(client, c, pid, 500, after=timedelta(days=1))
    ids["expiring_voucher"] = expiring["id"]

    captured = w.captured(100)  # claimed, confirmed
    ids["captured"] = captured
    _ok(refund(client, c.supplier, captured, 10), 201)
    _ok(feedback(client, c.group, captured), 201)
    rejected = claim(client, c.supplier, w.code, 50)["id"]
    _ok(decide(client, c.group, rejected, "reject"))
    cancelled = claim(client, c.supplier, w.code, 40)["id"]
    _ok(decide(client, c.supplier, cancelled, "cancel"))
    ids["timed_out"] = claim(client, c.supplier, w.code, 30)["id"]

    refused = _ok(propose(client, people.officer, pid, c.supplier.id), 201)["id"]
    _ok(reject(client, people.approver, refused))
    paid = _ok(propose(client, people.officer, pid, c.supplier.id), 201)["id"]
    _ok(approve(client, people.approver, paid))
    ids["settlement"] = paid

    _ok(
        client.post(
            f"/v1/vouchers/{ids['revoked_voucher']}/revoke",
            headers=c.manager.headers,
            json={"reason": "issued twice"},
        )
    )
    accredit(client, c.manager, pid, c.other_supplier.id, ["leadership"])
    _ok(
        client.delete(
            f"/v1/programmes/{pid}/accreditations/{c.other_supplier.id}", headers=c.manager.headers
        ),
        204,
    )

    # The background sweep, 15 days on: the hold times out, the short voucher expires.
    clock = Clock()
    clock.advance(timedelta(days=15))
    with pytest.MonkeyPatch.context() as patched:
        for module in CLOCKED_MODULES:
            patched.setattr(f"{module}.utcnow", clock)
        factory = session_factory(client)
        done = housekeep(
            factory,
            LeaseHolder(factory, LEASE_NAME, holder="story", seconds=30),
            idempotency_retention=timedelta(hours=24),
        )
    assert done is not None
    assert (done.expired_vouchers, done.released_holds) == (1, 1)

    before = read_all(client, c.admin)
    refused = post_claim(client, c.supplier, w.code, 10_000_000)
    emitted = read_all(client, c.admin)[len(before) :]

    _ok(client.post(f"/v1/programmes/{pid}/close", headers=c.funder.headers))
    _ok(client.get("/v1/audit/checkpoint", headers=c.auditor.headers))

    invited = invite(client, people.owner.headers, c.funder.id, "viewer")
    ids["member"] = invited["id"]
    _ok(accept(client, invited["invite_token"]))
    _ok(
        client.patch(
            f"/v1/members/{invited['id']}",
            headers=people.owner.headers,
            json={"status": "disabled"},
        )
    )
    # Corrections: a programme's name, a voucher's expiry, the funder's own name.
    _ok(client.patch(f"/v1/programmes/{pid}", headers=c.funder.headers, json={"name": "Renamed"}))
    active = ids["active_voucher"] = batch[1]["id"]
    expiry = datetime.fromisoformat(
        _ok(client.get(f"/v1/vouchers/{active}", headers=c.manager.headers))["expires_at"]
    )
    _ok(
        client.patch(
            f"/v1/vouchers/{active}",
            headers=c.manager.headers,
            json={"expires_at": (expiry + timedelta(days=1)).isoformat()},
        )
    )
    _ok(
        client.patch(
            f"/v1/accounts/{c.funder.id}", headers=c.funder.headers, json={"name": "Fund Two"}
        )
    )
    stranger = make_party(client, c.admin, "supplier")
    factory = session_factory(client)
    for _ in range(20):  # deliver everything (a few passes at most)
        deliver_due(factory, settings)
        with factory() as session:
            pending = session.execute(
                select(WebhookDelivery.id).where(WebhookDelivery.status != "succeeded")
            ).first()
        if pending is None:
            break
    return Story(client, w, stranger, ids, refused, emitted, hook, endpoint["secret"])


@pytest.fixture(scope="module", params=BACKENDS)
def story(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    backend = str(request.param)
    if backend == "postgresql":
        require_postgres()
    tmp: Path = tmp_path_factory.mktemp("events")
    settings = Settings(
        database_url=fresh_database(backend, request, tmp),
        signing_key=TEST_SIGNING_KEY,
        signing_key_file=tmp / "unused-key",
        sealer_enabled=False,
        sweep_enabled=False,
        webhook_delivery_enabled=False,  # the story delivers when it means to
        webhook_allow_insecure_urls=True,  # the receiver is on 127.0.0.1, over http
        pool_size=2,
        log_level="WARNING",
        password_time_cost=1,
        password_memory_kib=8,
        password_parallelism=1,
    )
    with receiver() as hook, client_for(settings) as client:
        yield _tell(client, hook, settings)


def test_the_funder_reads_every_type_the_story_emitted(story: Story) -> None:
    events = read_all(story.client, story.world.cast.funder.headers)
    assert types_of(events) == STORY_TYPES
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)
    issued = [e for e in events if e["type"] == "voucher.issued"]
    assert len(issued) == 4  # one single, two in the batch, the expiring one
    # An event's object is the API object after the change; a voucher's code stays out.
    assert {e["data"]["object"]["code"] for e in issued} == {None}
    assert all(e["programme_id"] == story.ids["programme"] for e in issued)
    revoked = next(e for e in events if e["type"] == "voucher.revoked")
    assert revoked["data"]["object"]["id"] == story.ids["revoked_voucher"]
    assert revoked["data"]["object"]["status"] == "revoked"
    expired = next(e for e in events if e["type"] == "voucher.expired")
    assert expired["data"]["object"]["id"] == story.ids["expiring_voucher"]
    voided = [e["data"]["object"] for e in events if e["type"] == "redemption.voided"]
    assert len(voided) == 3  # rejected, cancelled, timed out
    assert story.ids["timed_out"] in {v["id"] for v in voided}
    assert {v["status"] for v in voided} == {"voided"}
    refunded = next(e for e in events if e["type"] == "redemption.refunded")
    assert refunded["data"]["object"]["refunded_amount"] == 10
    settled = [e for e in events if e["type"] in ("settlement.approved", "settlement.settled")]
    assert {e["data"]["object"]["id"] for e in settled} == {story.ids["settlement"]}
    assert {e["data"]["object"]["status"] for e in settled} == {"settled"}
    # Auditors read settlement events too: the payout IBAN is never in them.
    assert {
        e["data"]["object"]["payout_iban"] for e in events if e["type"].startswith("settlement.")
    } == {None}
    members = [e for e in events if e["type"].startswith("member.")]
    assert [e["type"] for e in members if e["data"]["object"]["id"] == story.ids["member"]] == [
        "member.invited",
        "member.activated",
        "member.disabled",
    ]
    assert all("invite_token" not in e["data"]["object"] for e in members)
    seal = next(e for e in events if e["type"] == "seal.block_created")
    assert seal["programme_id"] is None
    assert seal["data"]["object"]["height"] == 1


def test_each_party_reads_what_concerns_it(story: Story) -> None:
    c, client = story.world.cast, story.client
    programme_types = (
        STORY_TYPES
        - {"seal.block_created", "account.updated"}
        - {t for t in STORY_TYPES if t.startswith("member.")}
    )
    assert types_of(read_all(client, c.manager.headers)) == programme_types
    assert types_of(read_all(client, c.auditor.headers)) == programme_types | {"seal.block_created"}
    assert types_of(read_all(client, c.group.headers)) == {
        "voucher.issued",
        "voucher.updated",
        "voucher.revoked",
        "voucher.expired",
        "redemption.created",
        "redemption.captured",
        "redemption.voided",
        "redemption.refunded",
        "feedback.created",
    }
    assert types_of(read_all(client, c.supplier.headers)) == {
        "accreditation.created",
        "redemption.created",
        "redemption.captured",
        "redemption.voided",
        "redemption.refunded",
        # Not feedback.created: a group's rating is for the programme's parties.
        "settlement.proposed",
        "settlement.rejected",
        "settlement.approved",
        "settlement.settled",
    }
    assert types_of(read_all(client, c.other_supplier.headers)) == {
        "accreditation.created",
        "accreditation.suspended",
    }
    # Strangers read nothing of the programme; every funder hears of a seal block.
    assert read_all(client, story.stranger_supplier.headers) == []
    assert read_all(client, c.other_group.headers) == []
    assert types_of(read_all(client, c.other_funder.headers)) == {"seal.block_created"}
    # The admin reads everything.
    assert types_of(read_all(client, c.admin)) == STORY_TYPES


def test_after_resumes_exactly_and_the_feed_says_where_to_resume(story: Story) -> None:
    client, headers = story.client, story.world.cast.funder.headers
    everything = read_all(client, headers)
    paged = read_all(client, headers, limit=3)
    assert [e["id"] for e in paged] == [e["id"] for e in everything]
    middle = everything[len(everything) // 2]
    rest = read_all(client, headers, after=middle["id"])
    assert [e["id"] for e in rest] == [e["id"] for e in everything[len(everything) // 2 + 1 :]]

    last = everything[-1]["id"]
    end = _ok(client.get("/v1/events", headers=headers, params={"after": last}))
    assert end == {"data": [], "has_more": False, "next_after": last}
    first = _ok(client.get("/v1/events", headers=headers, params={"limit": 2}))
    assert first["has_more"] is True
    assert first["next_after"] == first["data"][-1]["id"] == everything[1]["id"]


def test_filters_by_type_and_programme(story: Story) -> None:
    client, headers = story.client, story.world.cast.funder.headers
    pid = story.ids["programme"]
    both = read_all(client, headers, types="voucher.revoked,voucher.expired")
    assert [e["type"] for e in both] == ["voucher.revoked", "voucher.expired"]
    repeated = client.get(
        "/v1/events",
        headers=headers,
        params=[("types", "voucher.revoked"), ("types", "voucher.expired")],
    )
    assert _ok(repeated)["data"] == both
    of_programme = read_all(client, headers, programme_id=pid)
    assert types_of(of_programme) == STORY_TYPES - {"seal.block_created", "account.updated"} - {
        t for t in STORY_TYPES if t.startswith("member.")
    }
    assert read_all(client, headers, programme_id="prg_nothing") == []


def test_bad_queries_are_refused(story: Story) -> None:
    client, c = story.client, story.world.cast
    mine = read_all(client, c.funder.headers)[0]["id"]
    for params, code in [
        ({"types": "voucher.issued,voucher.stolen"}, "validation_error"),
        ({"after": "evt_unknown"}, "validation_error"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 501}, "validation_error"),
    ]:
        response = client.get("/v1/events", headers=c.funder.headers, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == code
    # Another party's event is no place to resume from: as unknown as a made-up id.
    foreign = client.get("/v1/events", headers=c.other_funder.headers, params={"after": mine})
    assert foreign.status_code == 422
    assert client.get("/v1/events").status_code == 401


def test_one_event_is_read_by_its_readers_only(story: Story) -> None:
    client, c = story.client, story.world.cast
    event = read_all(client, c.funder.headers, types="programme.created")[0]
    assert _ok(client.get(f"/v1/events/{event['id']}", headers=c.auditor.headers)) == event
    for stranger in (c.other_funder, story.stranger_supplier):
        response = client.get(f"/v1/events/{event['id']}", headers=stranger.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert client.get("/v1/events/evt_none", headers=c.funder.headers).status_code == 404


def test_a_refused_request_emits_nothing(story: Story) -> None:
    assert story.refused.status_code == 409, story.refused.text
    assert story.refused.json()["code"] == "insufficient_funds"
    assert story.emitted_by_refusal == []


def test_a_webhook_receiver_gets_every_type_once_each_signature_verified(story: Story) -> None:
    feed = read_all(story.client, story.world.cast.admin)
    received = []
    verifier = Webhook(story.secret)
    for request in story.hook.requests:
        # Raises on a bad or missing signature; returns the parsed body.
        received.append(verifier.verify(request.body, request.headers))
        assert request.headers["webhook-id"] == received[-1]["id"]
    assert {e["type"] for e in received} == STORY_TYPES
    # Each event once (in the normal case, at least once means once), as in the feed.
    assert sorted(e["id"] for e in received) == sorted(e["id"] for e in feed)
    by_id = {e["id"]: e for e in feed}
    assert all(e == by_id[e["id"]] for e in received)
    # A forged body does not pass.
    first = story.hook.requests[0]
    with pytest.raises(WebhookVerificationError):
        verifier.verify(first.body.replace(b"}", b" }", 1), first.headers)
