-- EXPERIMENT (not what ledger.post runs): the transfer as ONE statement after BEGIN.
-- The insert CTE as in pgbench_transfer.sql; the account rows are locked in sorted code
-- order by SELECT ... ORDER BY code FOR UPDATE, then updated with the same guard, and
-- only when the journal row was written (joined on the insert's RETURNING).
-- Measures what folding the UPDATEs into the CTE would save on the server.
\set a random(0, :accounts - 1)
\set b mod(:a + random(1, :accounts - 1), :accounts)
\set amount random(1, 100)
BEGIN;
WITH t AS (INSERT INTO ledger_transactions
    (id, kind, programme_id, actor, idempotency_key, created_at, memo, metadata)
    VALUES ('txn_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS') || substr(md5(random()::text), 1, 12),
            'transfer', NULL, NULL, 'pgbench-' || md5(random()::text),
            clock_timestamp() AT TIME ZONE 'UTC', NULL, CAST('{}' AS JSON))
    ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at),
v AS (SELECT * FROM (VALUES ('voucher:' || lpad((:a)::text, 5, '0'), -(:amount)::bigint, 'EUR'),
                            ('voucher:' || lpad((:b)::text, 5, '0'), (:amount)::bigint, 'EUR'))
        AS v(account_code, amount, currency)),
p AS (INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, created_at)
    SELECT t.id, v.account_code, v.amount, v.currency, t.created_at FROM t CROSS JOIN v),
q AS (INSERT INTO ledger_seal_queue (transaction_id) SELECT id FROM t),
l AS (SELECT code FROM ledger_accounts WHERE code IN (SELECT account_code FROM v)
      AND EXISTS (SELECT 1 FROM t) ORDER BY code FOR UPDATE),
u AS (UPDATE ledger_accounts a SET balance = a.balance + v.amount FROM l, v
      WHERE a.code = l.code AND v.account_code = a.code AND a.currency = v.currency
        AND (a.may_go_negative OR a.balance + v.amount >= 0) RETURNING a.code)
SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM u);
COMMIT;
