"""`voucherledger demo`, run as a newcomer would, on a fresh database of each backend."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.app import bearer, client_for
from voucherledger.accounts.models import Account, Member
from voucherledger.core.settings import Settings
from voucherledger.ledger.models import JournalTransaction
from voucherledger.redemptions.models import Feedback, Redemption
from voucherledger.settlements.models import Settlement
from voucherledger.vouchers.models import Voucher

CLI = Path(sys.executable).parent / "voucherledger"
BASE_URL = "http://demo.example:9000"
ROLES = ["admin", "funder", "manager", "auditor", "group", "supplier"]

pytestmark = pytest.mark.slow  # the whole demo, and the console script several times


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
    env["VOUCHERLEDGER_DATABASE_URL"] = settings.database_url
    # The app under test signs with the same key, so its exports extend the demo's chain.
    env["VOUCHERLEDGER_SIGNING_KEY"] = settings.signing_key or ""
    env["VOUCHERLEDGER_SIGNING_KEY_FILE"] = str(settings.signing_key_file)
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def parse(stdout: str) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    """The printed keys by role, and each role's curl commands as argument lists
    (up to the first shell operator)."""
    keys: dict[str, str] = {}
    commands: dict[str, list[list[str]]] = {}
    for line in stdout.splitlines():
        assignment = re.fullmatch(r"([A-Z]+)_KEY=(\S+)", line)
        if assignment:
            keys[assignment[1].lower()] = assignment[2]
        elif line.startswith("curl "):
            words = shlex.split(line)
            role = re.fullmatch(r"Authorization: Bearer \$([A-Z]+)_KEY", words[3])
            assert role, line
            cut = next((i for i, w in enumerate(words) if w in ("|", "&&")), len(words))
            commands.setdefault(role[1].lower(), []).append(words[:cut])
    return keys, commands


SIGN_IN = re.compile(
    r"# ([a-z]+) \(([a-z]+)\): .+: email (\S+) password (\S+)"
    r"(?:\n#   and a TOTP code: add secret ([A-Z2-7]+) )?"
)


def sign_ins(stdout: str) -> dict[tuple[str, str], tuple[str, str, str | None]]:
    """The printed console sign-ins: (email, password, TOTP secret or None) by the
    account's kind and the person's role."""
    return {(m[1], m[2]): (m[3], m[4], m[5]) for m in SIGN_IN.finditer(stdout)}


def count(session_factory: sessionmaker[Session], model: type[object]) -> int:
    with session_factory() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_demo_fills_a_fresh_database_with_a_working_scheme(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    result = run_cli(settings, "demo", "--base-url", BASE_URL + "/")
    assert result.returncode == 0, (result.stdout, result.stderr)
    keys, commands = parse(result.stdout)
    assert sorted(keys) == sorted(ROLES)
    assert {role: len(cmds) for role, cmds in commands.items()} == dict.fromkeys(ROLES, 3)
    for key in keys.values():
        assert key not in result.stderr

    people = sign_ins(result.stdout)
    # A person of every party; the agency's two people of a payout among them.
    assert sorted(people) == [
        ("admin", "owner"),
        ("auditor", "owner"),
        ("funder", "approver"),
        ("funder", "operator"),
        ("funder", "owner"),
        ("group", "owner"),
        ("manager", "owner"),
        ("supplier", "owner"),
    ]
    assert f"# In the browser: {BASE_URL}/console " in result.stdout
    passwords = {password for _, password, _ in people.values()}
    assert len(passwords) == 1  # one password for the run, shown once
    assert next(iter(passwords)) not in result.stderr
    secrets = [secret for _, _, secret in people.values() if secret]
    assert len(secrets) == 1  # the approver's, who needs a second factor
    assert secrets[0] not in result.stderr

    with client_for(settings) as client:
        # Every printed sign-in opens a session of its party, in its role.
        for (kind, role), (email, password, secret) in people.items():
            body = {"email": email, "password": password}
            if secret:
                body["totp_code"] = pyotp.TOTP(secret).now()
            signed = client.post("/v1/sessions", json=body)
            assert signed.status_code == 201, signed.text
            client.cookies.clear()
            me = client.get(
                "/v1/me", headers={"Cookie": f"vl_session={signed.cookies['vl_session']}"}
            )
            assert me.json()["kind"] == kind
            assert me.json()["member"]["role"] == role
        # Only the printed password opens them (tried once: the limiter counts failures).
        email = people["group", "owner"][0]
        wrong = client.post("/v1/sessions", json={"email": email, "password": "x" * 12})
        assert wrong.status_code == 401

        # Every printed key authenticates as its party.
        for role, key in keys.items():
            me = client.get("/v1/me", headers=bearer(key))
            assert me.status_code == 200, me.text
            assert me.json()["kind"] == role

        # Every printed command works as printed, against the given base URL.
        for role, cmds in commands.items():
            for words in cmds:
                url = next(w for w in words if w.startswith("http"))
                assert url.startswith(BASE_URL + "/v1/"), url
                parts = urlsplit(url)
                path = f"{parts.path}?{parts.query}" if parts.query else parts.path
                response = client.get(path, headers=bearer(keys[role]))
                assert response.status_code == 200, (role, url, response.text)
                if "-o" in words:  # the auditor's export, then `voucherledger verify FILE`
                    export = tmp_path / words[words.index("-o") + 1]
                    export.write_bytes(response.content)
        verified_file = run_cli(settings, "verify", str(tmp_path / "demo-export.jsonl"))
        assert verified_file.returncode == 0, verified_file.stdout
        assert verified_file.stdout.startswith("OK ")

        funder = bearer(keys["funder"])
        programme_id = client.get("/v1/programmes", headers=funder).json()["data"][0]["id"]
        _check_story(client, funder, programme_id, session_factory)

        # The ledger balances to zero, and it is sealed and verifies.
        trial = client.get("/v1/ledger/trial-balance", headers=bearer(keys["admin"])).json()
        assert trial["totals"] == {"EUR": 0}
        assert len(trial["accounts"]) > 20

    verified = run_cli(settings, "verify")
    assert verified.returncode == 0, verified.stdout
    sealed = re.match(r"OK (\d+) sealed transaction\(s\)", verified.stdout)
    assert sealed, verified.stdout
    assert int(sealed[1]) == count(session_factory, JournalTransaction) > 20


def _check_story(
    client: TestClient,
    funder: dict[str, str],
    programme_id: str,
    session_factory: sessionmaker[Session],
) -> None:
    programme = client.get(f"/v1/programmes/{programme_id}", headers=funder).json()
    assert programme["rules"]["women_led_reserve_pct"] == 30
    assert programme["rules"]["max_voucher_amount"] is not None
    assert len(programme["manager_ids"]) == len(programme["auditor_ids"]) == 1
    balances = programme["balances"]
    others = {k: v for k, v in balances.items() if k != "deposited"}
    assert len(others) == 7
    assert balances["deposited"] == sum(others.values()) > 0
    # Something sits in each stage of the money flow.
    for stage in ("unissued", "unissued_women_led_reserve", "outstanding", "held", "payable"):
        assert balances[stage] > 0, stage
    assert balances["settled"] > 0

    with session_factory() as session:
        groups = session.execute(select(Account).where(Account.kind == "group")).scalars().all()
        suppliers = session.execute(select(Account).where(Account.kind == "supplier")).scalars()
        claims = session.execute(select(Redemption)).scalars().all()
        feedback = session.execute(select(Feedback)).scalars().all()
        vouchers = session.execute(select(Voucher)).scalars().all()
        assert len(groups) == 12
        assert len({g.group_type for g in groups}) >= 8
        assert len({g.origin_country for g in groups}) >= 8
        assert 0 < sum(bool(g.women_led) for g in groups) < 12
        assert len({tuple(s.service_categories or []) for s in suppliers}) == 4

        assert Counter(c.status for c in claims).keys() == {"pending", "captured", "voided"}
        reasons = [c.void_reason or "" for c in claims if c.status == "voided"]
        assert any(r.startswith("rejected:") for r in reasons)
        assert "cancelled by the supplier" in reasons
        assert any(0 < c.refunded_amount < c.amount for c in claims)
        assert any(c.settlement_id is not None for c in claims)
        # Paid with two people: proposed by one member of the funder, approved by another.
        (paid,) = session.execute(select(Settlement)).scalars().all()
        assert paid.status == "settled"
        assert paid.proposed_by is not None
        assert paid.approved_by is not None
        assert paid.proposed_by != paid.approved_by
        assert {paid.proposed_by, paid.approved_by} <= {
            m.id for m in session.execute(select(Member)).scalars()
        }
        assert {f.outcome_kind for f in feedback} == {"product", "process"}
        assert len({f.rating for f in feedback}) > 1
        assert Counter(v.status for v in vouchers)["revoked"] == 1
        # Single vouchers and a batch: more than one issuing transaction, fewer than vouchers.
        assert 1 < len({v.issue_transaction_id for v in vouchers}) < len(vouchers)

    # Claims in every state are visible through the API too.
    listed = client.get(
        "/v1/redemptions", params={"programme_id": programme_id, "limit": 100}, headers=funder
    ).json()["data"]
    assert {c["status"] for c in listed} == {"pending", "captured", "voided"}


def test_demo_refuses_a_database_with_accounts_unless_forced(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    runs = [run_cli(settings, "demo")]
    assert runs[0].returncode == 0
    accounts = count(session_factory, Account)
    transactions = count(session_factory, JournalTransaction)

    again = run_cli(settings, "demo")
    assert again.returncode == 1
    assert again.stdout == ""  # no keys printed
    assert "already has" in again.stderr
    assert "--force" in again.stderr
    assert count(session_factory, Account) == accounts
    assert count(session_factory, JournalTransaction) == transactions

    forced = run_cli(settings, "demo", "--force")
    assert forced.returncode == 0, forced.stderr
    # Each run has its own password; the second run's sign-in opens the second
    # run's accounts (the first run's people keep the first password).
    first, second = sign_ins(runs[0].stdout), sign_ins(forced.stdout)
    assert first["group", "owner"][1] != second["group", "owner"][1]
    with client_for(settings) as client:
        email, password, _ = second["group", "owner"]
        signed = client.post("/v1/sessions", json={"email": email, "password": password})
        assert signed.status_code == 201, signed.text
    assert count(session_factory, Account) == 2 * accounts
    assert count(session_factory, JournalTransaction) == 2 * transactions
