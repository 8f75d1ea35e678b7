"""``voucherledger.client.webhooks.verify`` accepts what standardwebhooks signs, with
any of the secrets of a rotation, and refuses a tampered, stale or unsigned webhook."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from voucherledger.client.webhooks import WebhookVerificationError, verify

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
EVENT = {"id": "evt_1", "type": "redemption.captured", "data": {"object": {"id": "red_1"}}}


def _signed(payload: bytes, secret: str = SECRET, when: datetime | None = None) -> dict[str, str]:
    when = when or datetime.now(tz=UTC)
    signature = Webhook(secret).sign("msg_1", when, payload.decode())
    return {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(int(when.timestamp())),
        "Webhook-Signature": signature,
    }


def test_a_signed_webhook_verifies_with_its_secret_or_in_a_rotation_list() -> None:
    payload = json.dumps(EVENT).encode()
    assert verify(payload, _signed(payload), SECRET) == EVENT
    assert verify(payload, _signed(payload, NEW_SECRET), [SECRET, NEW_SECRET]) == EVENT
    both = _signed(payload)
    both["Webhook-Signature"] += " " + _signed(payload, NEW_SECRET)["Webhook-Signature"]
    assert verify(payload, both, NEW_SECRET) == EVENT


def test_tampered_wrongly_signed_stale_or_unsigned_webhooks_are_refused() -> None:
    payload = json.dumps(EVENT).encode()
    headers = _signed(payload)
    with pytest.raises(WebhookVerificationError):
        verify(payload.replace(b"red_1", b"red_2"), headers, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify(payload, headers, NEW_SECRET)
    old = datetime.now(tz=UTC) - timedelta(seconds=400)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(payload, _signed(payload, when=old), SECRET)
    assert verify(payload, _signed(payload, when=old), SECRET, tolerance=600) == EVENT
    for broken in ("v1,", "v2,abc", "garbage", "v1,%%%"):
        with pytest.raises(WebhookVerificationError):
            verify(payload, {**headers, "Webhook-Signature": broken}, SECRET)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(payload, {"webhook-id": "msg_1"}, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify(payload, {**headers, "Webhook-Timestamp": "soon"}, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify(payload, headers, [])


def test_a_signed_payload_that_is_not_an_object_is_refused() -> None:
    payload = b"[1, 2]"
    with pytest.raises(WebhookVerificationError, match="object"):
        verify(payload, _signed(payload), SECRET)
