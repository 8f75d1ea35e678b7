-- One ledger transfer, the statements ledger.post runs on PostgreSQL, as a pgbench script.
-- The journal row, both postings and the seal-queue entry in one CTE, then one guarded
-- UPDATE per account in sorted code order; pgbench variables: accounts (from -D).
-- Run by bench/pgbench_floor.py against a database built by the migrations and funded.
\set a random(0, :accounts - 1)
\set b mod(:a + random(1, :accounts - 1), :accounts)
\set amount random(1, 100)
\set lo least(:a, :b)
\set hi greatest(:a, :b)
\set clo CASE WHEN :lo = :a THEN -:amount ELSE :amount END
\set chi -:clo
BEGIN;
WITH t AS (INSERT INTO ledger_transactions
    (id, kind, programme_id, actor, idempotency_key, created_at, memo, metadata)
    VALUES ('txn_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS') || substr(md5(random()::text), 1, 12),
            'transfer', NULL, NULL, 'pgbench-' || md5(random()::text),
            clock_timestamp() AT TIME ZONE 'UTC', NULL, CAST('{}' AS JSON))
    ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at),
p AS (INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, created_at)
    SELECT t.id, v.account_code, v.amount, v.currency, t.created_at FROM t
    CROSS JOIN (VALUES ('voucher:' || lpad((:a)::text, 5, '0'), -(:amount)::bigint, 'EUR'),
                       ('voucher:' || lpad((:b)::text, 5, '0'), (:amount)::bigint, 'EUR'))
        AS v(account_code, amount, currency)),
q AS (INSERT INTO ledger_seal_queue (transaction_id) SELECT id FROM t)
SELECT count(*) FROM t;
UPDATE ledger_accounts SET balance = balance + (:clo)::bigint
    WHERE code = 'voucher:' || lpad((:lo)::text, 5, '0') AND currency = 'EUR'
      AND (may_go_negative OR balance + (:clo)::bigint >= 0) RETURNING balance;
UPDATE ledger_accounts SET balance = balance + (:chi)::bigint
    WHERE code = 'voucher:' || lpad((:hi)::text, 5, '0') AND currency = 'EUR'
      AND (may_go_negative OR balance + (:chi)::bigint >= 0) RETURNING balance;
COMMIT;
