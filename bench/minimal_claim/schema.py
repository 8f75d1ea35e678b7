"""The minimal claim's tables, made in a fresh bench database, and the check of what a
run wrote. (The ``statements`` mode runs on a copy of the claims bench's template
instead, checked as the service's runs are.)

- ``mc_vouchers``: one row per voucher, its code unique, its balance never negative;
- ``mc_suppliers``: 100 rows, each claim adds to one;
- ``mc_journal`` and ``mc_postings``: one journal row and two postings (voucher
  minus, supplier plus) per claim.

No foreign keys or triggers: the reference is the least a claim can do.
"""

from __future__ import annotations

import psycopg

SCHEMA = (
    "CREATE TABLE mc_vouchers (id bigint PRIMARY KEY, code text NOT NULL UNIQUE, "
    "balance bigint NOT NULL CHECK (balance >= 0))",
    "CREATE TABLE mc_suppliers (id bigint PRIMARY KEY, balance bigint NOT NULL)",
    "CREATE TABLE mc_journal (id bigserial PRIMARY KEY, voucher_id bigint NOT NULL, "
    "supplier_id bigint NOT NULL, amount bigint NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE mc_postings (id bigserial PRIMARY KEY, journal_id bigint NOT NULL, "
    "account text NOT NULL, amount bigint NOT NULL)",
)


def create(dsn: str, codes: list[str], face: int, suppliers: int = 100) -> None:
    """The tables, one voucher of ``face`` per code, ``suppliers`` supplier rows at 0."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        with conn.cursor() as cursor:
            with cursor.copy("COPY mc_vouchers (id, code, balance) FROM STDIN") as copy:
                for i, code in enumerate(codes):
                    copy.write_row((i, code, face))
            cursor.execute(
                "INSERT INTO mc_suppliers (id, balance) SELECT g, 0 FROM generate_series(0, %s) g",
                (suppliers - 1,),
            )
        conn.execute("VACUUM ANALYZE")


def check(dsn: str, face: int, created: int) -> str:
    """``ok`` when there is one journal row per 201, its postings sum to zero, and what
    left the vouchers is what reached the suppliers; else what is wrong."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM mc_journal), "
            "(SELECT coalesce(sum(amount), 0) FROM mc_journal), "
            "(SELECT count(*) FROM mc_postings), "
            "(SELECT coalesce(sum(amount), 0) FROM mc_postings), "
            "(SELECT coalesce(sum(%s - balance), 0) FROM mc_vouchers), "
            "(SELECT coalesce(sum(balance), 0) FROM mc_suppliers)",
            (face,),
        ).fetchone()
    if row is None:
        return "FAILED: no answer"
    journal, claimed, postings, posted, spent, earned = (int(x) for x in row)
    if journal != created:
        return f"FAILED: {journal} journal rows, {created} answered 201"
    if postings != 2 * journal or posted != 0:
        return f"FAILED: {postings} postings summing to {posted}"
    if not spent == earned == claimed:
        return f"FAILED: vouchers gave {spent}, suppliers got {earned}, journal says {claimed}"
    return f"ok ({journal} claims)"
