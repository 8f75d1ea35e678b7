"""Members of accounts with personal keys: written straight to the database
(:func:`add_member`), or through the invitation flow of the API (:func:`invite`,
:func:`accept`, :func:`onboard`).

:func:`add_member` is for tests of what a person may do; its password hash is a
placeholder: such a member signs in with its key, never with a password.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories.app import bearer
from tests.factories.redemptions import Clock
from voucherledger.accounts.models import ApiKey, Member
from voucherledger.core.auth import MemberRole, generate_key
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.ids import new_id
from voucherledger.people.passwords import passwords_for


@dataclass(frozen=True)
class Person:
    id: str
    account_id: str
    role: MemberRole
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)


def add_member(
    client: TestClient,
    account_id: str,
    role: MemberRole,
    *,
    email: str | None = None,
    totp: bool = False,
) -> Person:
    """An active member of the account with a personal API key. ``totp`` marks its
    second factor as confirmed (with a fixed secret), as an approver needs."""
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    member_id = new_id("mem")
    address = email or f"{member_id.lower()}@example.org"
    new = generate_key()
    now = utcnow()
    with transaction(factory) as session:
        session.add(
            Member(
                id=member_id,
                account_id=account_id,
                email=address,
                email_key=address.lower(),
                name=f"A {role}",
                role=role,
                status="active",
                password_hash="!placeholder",
                totp_secret="JBSWY3DPEHPK3PXP" if totp else None,
                totp_confirmed_at=now if totp else None,
                created_at=now,
            )
        )
        session.flush()
        session.add(
            ApiKey(
                id=new.id,
                account_id=account_id,
                member_id=member_id,
                secret_hash=new.secret_hash,
                created_at=now,
            )
        )
    return Person(member_id, account_id, role, new.plaintext)


# --- the invitation flow, through the API ---------------------------------------------

# A password that meets the rules (long, not common).
PASSWORD = "a long and quite uncommon passphrase"
# The modules whose ``utcnow`` decides when an invitation expires.
PEOPLE_CLOCKED_MODULES = ("voucherledger.people.service",)
_addresses = itertools.count(1)


def new_email(prefix: str = "person") -> str:
    return f"{prefix}.{next(_addresses)}@example.org"


@contextmanager
def people_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """The clock of invitations, under the test's control."""
    clock = Clock()
    with monkeypatch.context() as patched:
        for module in PEOPLE_CLOCKED_MODULES:
            patched.setattr(f"{module}.utcnow", clock)
        yield clock


def invite(
    client: TestClient,
    headers: dict[str, str],
    account_id: str,
    role: MemberRole,
    *,
    email: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Invite a person (201 asserted); the body, ``invite_token`` included."""
    body = {"email": email or new_email(role), "name": name or f"An invited {role}", "role": role}
    response = client.post(f"/v1/accounts/{account_id}/members", headers=headers, json=body)
    assert response.status_code == 201, response.text
    invited: dict[str, Any] = response.json()
    return invited


def accept(client: TestClient, token: str, password: str = PASSWORD) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/invites/accept", json={"token": token, "password": password}
    )
    return response


def personal_key(client: TestClient, headers: dict[str, str], member_id: str) -> str:
    response = client.post(f"/v1/members/{member_id}/keys", headers=headers)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


@dataclass(frozen=True)
class Signed:
    """A signed-in session: its cookie token and CSRF token."""

    token: str
    csrf: str
    body: dict[str, Any]

    @property
    def reads(self) -> dict[str, str]:
        return {"Cookie": f"vl_session={self.token}"}

    @property
    def writes(self) -> dict[str, str]:
        return {"Cookie": f"vl_session={self.token}", "X-CSRF-Token": self.csrf}


def sign_in(client: TestClient, email: str, password: str = PASSWORD, **extra: Any) -> Signed:
    """Sign in and keep the tokens apart from the client's cookie jar (so that one
    client can act as several people)."""
    response = client.post("/v1/sessions", json=sign_in_body(email, password, **extra))
    assert response.status_code == 201, response.text
    token = response.cookies["vl_session"]
    client.cookies.clear()
    body = response.json()
    return Signed(token, body["csrf_token"], body)


def sign_in_body(email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"email": email, "password": password, **extra}


def own_key(client: TestClient, email: str, member_id: str, password: str = PASSWORD) -> str:
    """The person signs in and makes its own personal key (nobody else may)."""
    signed = sign_in(client, email, password)
    key = personal_key(client, signed.writes, member_id)
    client.delete("/v1/sessions/current", headers=signed.writes)
    return key


def onboard(
    client: TestClient,
    inviter: dict[str, str],
    account_id: str,
    role: MemberRole,
    *,
    email: str | None = None,
) -> Person:
    """Invite, accept, and the person's own first personal key."""
    invited = invite(client, inviter, account_id, role, email=email)
    accepted = accept(client, invited["invite_token"])
    assert accepted.status_code == 200, accepted.text
    key = own_key(client, invited["email"], invited["id"])
    return Person(invited["id"], account_id, role, key)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_password(client: TestClient, member_id: str, password: str) -> None:
    """Give the member a real password (an Argon2id hash with the app's parameters),
    so that it can sign in with it."""
    settings = client.app.state.settings  # type: ignore[attr-defined]
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with transaction(factory) as session:
        member = session.get(Member, member_id)
        assert member is not None, member_id
        member.password_hash = passwords_for(settings).hash(password)
