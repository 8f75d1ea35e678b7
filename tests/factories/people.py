"""Members of accounts with personal keys, written straight to the database.

For tests of what a person may do; the invitation and sign-in flow has tests of
its own that go through the API. The password hash here is a placeholder: such a
member signs in with its key, never with a password.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from tests.factories.app import bearer
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


def set_password(client: TestClient, member_id: str, password: str) -> None:
    """Give the member a real password (an Argon2id hash with the app's parameters),
    so that it can sign in with it."""
    settings = client.app.state.settings  # type: ignore[attr-defined]
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with transaction(factory) as session:
        member = session.get(Member, member_id)
        assert member is not None, member_id
        member.password_hash = passwords_for(settings).hash(password)
