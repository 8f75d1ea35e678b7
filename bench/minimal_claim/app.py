"""The reference claim of issue 14: FastAPI + raw asyncpg, one endpoint, no auth, no
idempotency, no framework extras. ``bench/claims.py --reference`` runs it in 2 uvicorn
worker processes with ``MC_POOL`` (8) pooled connections each, 16 in all, and drives
it with the claims bench's own client (``POST /v1/redemptions``, the same bodies). The
workers are 2 uvicorn processes on their own ports, the clients split evenly over them
as over the service's 2 processes: under ``uvicorn --workers 2`` on one port, the
worker that wakes first accepts most of the 32 connections (27 of 32 in one try), so
the reference would run on one worker and one pool (``--reference-shared-port``
measures that anyway).

``MC_MODE`` picks what one claim does, in one transaction:

- ``minimal``: the minimal claim of the issue, on the tables of ``schema.py``: the
  voucher named by the body's code ``SELECT ... FOR UPDATE`` (10,000 of them),
  decremented; a journal row and its two postings; one of 100 supplier rows (drawn at
  random) incremented.
- ``statements``: the service's claim, statement for statement (the ``S_*`` texts
  below), on a copy of the claims bench's template: what PostgreSQL receives for one
  claim, sent by the leanest Python stack, so that its ratio to the service separates
  the framework's cost from the database's. asyncpg prepares each statement once per
  connection; the service's psycopg sends them unprepared (only its executemany is
  prepared).
- ``statements-unprepared``: the same without asyncpg's statement cache, so PostgreSQL
  parses and plans every statement, as it does for the service (asyncpg then spends a
  round trip more per statement).

The answers are 201 with a JSON body, 404/409 when a claim is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response

MODE = os.environ.get("MC_MODE", "minimal")
DSN = os.environ.get("MC_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
POOL = int(os.environ.get("MC_POOL", "8"))
SUPPLIERS = 100
MODES = ("minimal", "statements", "statements-unprepared")

# --- minimal ------------------------------------------------------------------------

M_LOCK = "SELECT id, balance FROM mc_vouchers WHERE code = $1 FOR UPDATE"
M_VOUCHER = "UPDATE mc_vouchers SET balance = balance - $2 WHERE id = $1"
M_JOURNAL = (
    "INSERT INTO mc_journal (voucher_id, supplier_id, amount) VALUES ($1, $2, $3) RETURNING id"
)
M_POSTINGS = (
    "INSERT INTO mc_postings (journal_id, account, amount) VALUES ($1, $2, $3), ($1, $4, $5)"
)
M_SUPPLIER = "UPDATE mc_suppliers SET balance = balance + $2 WHERE id = $1"


class Refused(Exception):
    """A claim refused: its transaction rolls back and the answer is ``status``."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.body = json.dumps({"code": code}).encode()


async def minimal_claim(
    conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], body: dict[str, Any]
) -> bytes:
    amount = int(body["amount"])
    supplier = random.randrange(SUPPLIERS)
    async with conn.transaction():
        row = await conn.fetchrow(M_LOCK, body["voucher_code"])
        if row is None:
            raise Refused(404, "not_found")
        if row["balance"] < amount:
            raise Refused(409, "insufficient_funds")
        voucher = row["id"]
        await conn.execute(M_VOUCHER, voucher, amount)
        journal = await conn.fetchval(M_JOURNAL, voucher, supplier, amount)
        await conn.execute(
            M_POSTINGS, journal, f"voucher:{voucher}", -amount, f"supplier:{supplier}", amount
        )
        await conn.execute(M_SUPPLIER, supplier, amount)
    return json.dumps({"id": journal, "balance": row["balance"] - amount}).encode()


# --- statements: the service's claim -------------------------------------------------
# Read off log_statement=all for one POST /v1/redemptions (programme without group
# confirmation, no Idempotency-Key) after issue 14's changes, in the order the service
# sends them, texts as PostgreSQL received them. Where they come from:
#   S_KEY        core/auth.py _KEY_LOOKUP
#   S_CONTEXT    redemptions/repository.py _CLAIM_CONTEXT (the supplier's failure count,
#                the voucher, its programme, the accreditation and the events' readers)
#   S_JOURNAL    the ledger's post as one statement: journal row, postings, seal queue,
#                the accounts locked in code order and the guarded UPDATE
#   S_CLAIM      redemptions/repository.py _INSERT_CLAIM
#   S_EVENTS     core/events.py emit_many: redemption.created and redemption.captured
#   S_RECIPIENTS core/events.py emit_many: each event's readers, one multi-row INSERT
# and BEGIN / COMMIT. The deferred balance trigger runs at COMMIT, as for the service.
# The service sends the last three in one pipelined round trip (psycopg's pipeline
# mode); asyncpg has none, so here they are three round trips.
# When the claim's statements change (check_statements.py tells), change these with them.

S_KEY = (
    "SELECT k.secret_hash, k.revoked_at, a.id, a.kind, m.id, m.role, m.status, "
    "a.require_totp, m.totp_confirmed_at FROM api_keys k "
    "JOIN accounts a ON a.id = k.account_id "
    "LEFT JOIN members m ON m.id = k.member_id WHERE k.id = $1"
)
S_CONTEXT = (
    "SELECT f.n, v.id, v.programme_id, v.group_id, v.currency, v.service_categories, "
    "v.status, v.expires_at, v.created_at, p.rules, a.status, a.service_categories, "
    "p.name, p.funder_id, (SELECT string_agg(pp.account_id, ',') FROM programme_parties pp "
    "WHERE pp.programme_id = v.programme_id) "
    "FROM (SELECT count(*) AS n FROM (SELECT 1 FROM code_failures "
    "WHERE supplier_id = $1 AND failed_at > $2 LIMIT $3) AS recent) AS f "
    "LEFT JOIN vouchers v ON v.code = $4 "
    "LEFT JOIN programmes p ON p.id = v.programme_id "
    "LEFT JOIN accreditations a ON a.programme_id = v.programme_id AND a.supplier_id = $5"
)
S_JOURNAL = (
    "WITH t AS (INSERT INTO ledger_transactions (id, kind, programme_id, actor, "
    "idempotency_key, created_at, memo, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, "
    "CAST($8 AS JSON)) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at), "
    "p AS (INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, "
    "created_at) SELECT t.id, v.account_code, v.amount, v.currency, t.created_at FROM t "
    "CROSS JOIN (VALUES ($9, $10::bigint, $11), ($12, $13::bigint, $14)) AS "
    "v(account_code, amount, currency)), q AS (INSERT INTO ledger_seal_queue "
    "(transaction_id) SELECT id FROM t), n AS (SELECT * FROM (VALUES ($15, $16, "
    "$17::bigint), ($18, $19, $20::bigint)) AS n(code, currency, change)), l AS (SELECT "
    "a.code FROM ledger_accounts a WHERE a.code IN (SELECT code FROM n) AND EXISTS "
    "(SELECT 1 FROM t) ORDER BY a.code FOR UPDATE), u AS (UPDATE ledger_accounts a SET "
    "balance = a.balance + n.change FROM n WHERE a.code = n.code AND a.currency = "
    "n.currency AND a.code IN (SELECT code FROM l) AND (a.may_go_negative OR a.balance + "
    "n.change >= 0) RETURNING a.code, a.currency, a.balance) SELECT (SELECT count(*) FROM "
    "t), ARRAY(SELECT code FROM u), ARRAY(SELECT currency FROM u), ARRAY(SELECT balance "
    "FROM u)"
)
_CLAIM_COLUMNS = (
    "id, voucher_id, programme_id, supplier_id, group_id, amount, refunded_amount, currency, "
    "service_category, description, delivered_on, evidence, status, created_at, "
    "hold_expires_at, decided_at, void_reason, settlement_id, created_by, decided_by, metadata"
)
S_CLAIM = (
    f"INSERT INTO redemptions ({_CLAIM_COLUMNS}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, 22))})"
)


# core/events.py insert_events: the events, then their readers, as unnest arrays.
S_EVENTS = (
    "INSERT INTO events (id, sequence, type, created_at, programme_id, account_ids, data) "
    "SELECT u.id, NULL, u.type, u.created_at, u.programme_id, CAST(u.account_ids AS JSON), "
    "CAST(u.data AS JSON) "
    "FROM unnest($1::text[], $2::text[], $3::timestamp[], $4::text[], $5::text[], $6::text[]) "
    "AS u(id, type, created_at, programme_id, account_ids, data)"
)
S_RECIPIENTS = (
    "INSERT INTO event_recipients (account_id, event_id) "
    "SELECT u.account_id, u.event_id FROM unnest($1::text[], $2::text[]) AS u(account_id, event_id)"
)

# One claim as PostgreSQL receives it, in order (check_statements.py compares this
# with what the service sends now).
CLAIM_SEQUENCE = (
    "BEGIN",
    S_KEY,
    S_CONTEXT,
    S_JOURNAL,
    S_CLAIM,
    S_EVENTS,
    S_RECIPIENTS,
    "COMMIT",
)

KEY_PREFIX = "vl_"
FAILURE_WINDOW = timedelta(seconds=60)
FAILURE_LIMIT = 10
_serial = itertools.count()


def new_id(prefix: str) -> str:
    """Unique across the workers (pid and a counter); ids are opaque to the service."""
    return f"{prefix}_mc{os.getpid():07d}{next(_serial):017d}"


def key_id_of(authorization: str | None) -> tuple[str, str]:
    token = (authorization or "").removeprefix("Bearer ")
    key_id, _, secret = token.removeprefix(KEY_PREFIX).rpartition("_")
    if not token.startswith(KEY_PREFIX) or not key_id.startswith("key_"):
        raise Refused(401, "unauthorized")
    return key_id, secret


async def service_claim(
    conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
    body: dict[str, Any],
    authorization: str | None,
) -> bytes:
    """The service's claim, statement for statement, with the checks it makes between
    them (kept as cheap as the service's: this measures the statements)."""
    key_id, secret = key_id_of(authorization)
    amount = int(body["amount"])
    category = str(body["service_category"])
    description = str(body["description"])
    now = datetime.now(UTC).replace(tzinfo=None)
    async with conn.transaction():
        key = await conn.fetchrow(S_KEY, key_id)
        if key is None or key[1] is not None:
            raise Refused(401, "unauthorized")
        if not hmac.compare_digest(key[0], hashlib.sha256(secret.encode()).hexdigest()):
            raise Refused(401, "unauthorized")
        supplier_id = str(key[2])
        row = await conn.fetchrow(
            S_CONTEXT,
            supplier_id,
            now - FAILURE_WINDOW,
            FAILURE_LIMIT,
            body["voucher_code"],
            supplier_id,
        )
        if row is None or row[0] >= FAILURE_LIMIT:
            raise Refused(429, "rate_limited")
        context = tuple(row)[1:]
        if context[0] is None or context[9] is None:
            raise Refused(404, "not_found")
        voucher_id, programme_id, group_id, currency = (
            context[0],
            context[1],
            context[2],
            context[3],
        )
        if context[5] != "active" or context[6] <= now or context[9] != "active":
            raise Refused(409, "voucher_not_claimable")
        if category not in json.loads(context[10]) or category not in json.loads(context[4]):
            raise Refused(403, "category_not_allowed")
        rules = json.loads(context[8])
        if rules.get("requires_group_confirmation", True):
            raise Refused(409, "holds_not_measured")
        redemption_id = new_id("red")
        voucher_code = f"voucher:{voucher_id}"
        payable = f"supplier:{supplier_id}:payable:{programme_id}"
        metadata = {"created_by": key_id, "redemption_id": redemption_id, "voucher_id": voucher_id}
        changes = sorted([(payable, amount), (voucher_code, -amount)])
        posted = await conn.fetchrow(
            S_JOURNAL,
            new_id("txn"),
            "capture",
            programme_id,
            supplier_id,
            None,
            now,
            description[:200],
            json.dumps(metadata, sort_keys=True, separators=(",", ":")),
            voucher_code,
            -amount,
            currency,
            payable,
            amount,
            currency,
            changes[0][0],
            currency,
            changes[0][1],
            changes[1][0],
            currency,
            changes[1][1],
        )
        if posted is None or len(posted[1]) != len(changes):
            raise Refused(409, "insufficient_funds")
        evidence = list(body.get("evidence", []))
        today = now.date()
        await conn.execute(
            S_CLAIM,
            redemption_id,
            voucher_id,
            programme_id,
            supplier_id,
            group_id,
            amount,
            0,
            currency,
            category,
            description,
            today,
            json.dumps(evidence),
            "captured",
            now,
            None,
            now,
            None,
            None,
            key_id,
            key_id,
            json.dumps({}),
        )
        out = claim_object(
            redemption_id, voucher_id, programme_id, supplier_id, group_id, amount, currency
        )
        out.update(
            service_category=category,
            description=description,
            delivered_on=today.isoformat(),
            evidence=evidence,
            created_at=now.isoformat() + "Z",
            created_by=key_id,
            decided_by=key_id,
        )
        parties = context[13].split(",") if context[13] else []
        readers = sorted({context[12], *parties, group_id, supplier_id} - {None, ""})
        data = json.dumps({"object": out})
        when = datetime.now(UTC).replace(tzinfo=None)
        ids = [new_id("evt") for _ in range(2)]
        kinds = ["redemption.created", "redemption.captured"]
        await conn.execute(
            S_EVENTS,
            ids,
            kinds,
            [when, when],
            [programme_id, programme_id],
            [json.dumps(readers)] * 2,
            [data, data],
        )
        rows = [(reader, event) for event in ids for reader in readers]
        await conn.execute(S_RECIPIENTS, [a for a, _ in rows], [e for _, e in rows])
    return json.dumps(out).encode()


def claim_object(
    redemption_id: str,
    voucher_id: str,
    programme_id: str,
    supplier_id: str,
    group_id: str,
    amount: int,
    currency: str,
) -> dict[str, Any]:
    """The claim as the service answers it (RedemptionOut's fields, in its order)."""
    return {
        "id": redemption_id,
        "voucher_id": voucher_id,
        "programme_id": programme_id,
        "supplier_id": supplier_id,
        "group_id": group_id,
        "amount": amount,
        "refunded_amount": 0,
        "currency": currency,
        "service_category": None,
        "description": None,
        "delivered_on": None,
        "evidence": [],
        "evidence_files": [],
        "status": "captured",
        "settled": False,
        "created_at": None,
        "created_by": None,
        "hold_expires_at": None,
        "decided_by": None,
        "metadata": {},
    }


# --- the app ---------------------------------------------------------------------------


def create_app(mode: str = MODE, dsn: str = DSN, pool_size: int = POOL) -> FastAPI:
    if mode not in MODES:
        raise ValueError(f"MC_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    state: dict[str, asyncpg.Pool[asyncpg.Record]] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(
            dsn,
            min_size=pool_size,
            max_size=pool_size,
            statement_cache_size=0 if mode == "statements-unprepared" else 100,
        )
        try:
            yield
        finally:
            await state["pool"].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/readyz")
    async def readyz() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.post("/v1/redemptions")
    async def claim(request: Request) -> Response:
        body = json.loads(await request.body())
        try:
            async with state["pool"].acquire() as conn:
                if mode == "minimal":
                    content = await minimal_claim(conn, body)
                else:
                    content = await service_claim(conn, body, request.headers.get("authorization"))
        except Refused as refused:
            return Response(refused.body, status_code=refused.status, media_type="application/json")
        return Response(content, status_code=201, media_type="application/json")

    return app


app = create_app()
