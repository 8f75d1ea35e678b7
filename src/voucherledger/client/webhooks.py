"""Verify a webhook from voucherledger (Standard Webhooks signatures) before trusting it.

    event = verify(request_body, request_headers, secret)   # raises WebhookVerificationError

``secret`` may be a list: during a rotation the server signs with the old and the new
secret for 24 hours, so a receiver can accept either until it has switched.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import standardwebhooks

from voucherledger.client.errors import WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify"]


def _signatures(header: str) -> list[bytes]:
    """The ``v1`` signatures of a ``webhook-signature`` header (space-separated)."""
    out: list[bytes] = []
    for entry in header.split():
        version, _, signature = entry.partition(",")
        if version != "v1" or not signature:
            continue
        try:
            out.append(base64.b64decode(signature, validate=True))
        except (binascii.Error, ValueError):
            continue
    return out


def verify(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    tolerance: int = 300,
) -> dict[str, Any]:
    """The event of a webhook whose signature checks out with one of the secrets.

    ``headers`` are the request's (any case); ``tolerance`` is how far, in seconds, the
    ``webhook-timestamp`` may be from now. The HMAC is ``standardwebhooks.Webhook``'s.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise WebhookVerificationError("no secret to verify with")
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signature = lowered.get("webhook-signature")
    if not (msg_id and stamp and signature):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    try:
        timestamp = datetime.fromtimestamp(int(stamp), tz=UTC)
    except (ValueError, OverflowError, OSError) as error:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time") from error
    if abs((datetime.now(tz=UTC) - timestamp).total_seconds()) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise WebhookVerificationError("the payload is not UTF-8") from error
    given = _signatures(signature)
    for candidate in secrets:
        expected = standardwebhooks.Webhook(candidate).sign(msg_id, timestamp, text)
        digest = base64.b64decode(expected.partition(",")[2])
        if any(hmac.compare_digest(digest, sig) for sig in given):
            try:
                event = json.loads(text)
            except ValueError as error:
                raise WebhookVerificationError("the payload is not JSON") from error
            if not isinstance(event, dict):
                raise WebhookVerificationError("the payload is not a JSON object")
            return event
    raise WebhookVerificationError("no signature matches")
