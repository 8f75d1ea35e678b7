-- One claim (POST /v1/redemptions, programme without group confirmation), the statements
-- the service runs on PostgreSQL, as read with log_statement=all: the API key look-up,
-- the claim's one read (voucher, programme rules, accreditation), the journal CTE, the
-- two guarded UPDATEs in sorted code order (payable, then voucher), the claim row, COMMIT.
-- pgbench variables: vouchers, suppliers (from -D). Each client is one supplier, as in
-- the API runs. The voucher code and the key id come from two small numbered tables
-- (bench_vouchers, bench_suppliers) that bench/claims.py adds to its copy of the database;
-- the API's client knows them already. Run by bench/claims.py.
-- (pgbench reads a colon followed by a name as a variable even inside a literal, hence
-- the odd spelling of the payable account code.)
\set v random(0, :vouchers - 1)
\set s :client_id % :suppliers
\set amount random(1, 150)
BEGIN;
SELECT api_keys.secret_hash, api_keys.revoked_at, accounts.id AS supplier_id,
       accounts.kind AS account_kind
    FROM api_keys JOIN accounts ON accounts.id = api_keys.account_id
    WHERE api_keys.id = (SELECT key_id FROM bench_suppliers WHERE n = :s) \gset
SELECT vouchers.id AS voucher_id, vouchers.programme_id, vouchers.group_id, vouchers.code,
       vouchers.currency, vouchers.amount AS face, vouchers.reserve_amount,
       vouchers.service_categories, vouchers.status AS voucher_status, vouchers.expires_at,
       vouchers.created_at AS issued_at, vouchers.issue_transaction_id, vouchers.revoked_at,
       vouchers.revoke_reason, vouchers.ended_transaction_id, programmes.rules,
       accreditations.status AS accreditation_status,
       accreditations.service_categories AS accredited_categories
    FROM vouchers JOIN programmes ON programmes.id = vouchers.programme_id
    LEFT OUTER JOIN accreditations ON accreditations.programme_id = vouchers.programme_id
        AND accreditations.supplier_id = :supplier_id::text
    WHERE vouchers.code = (SELECT code FROM bench_vouchers WHERE n = :v) \gset
WITH t AS (INSERT INTO ledger_transactions
    (id, kind, programme_id, actor, idempotency_key, created_at, memo, metadata)
    VALUES ('txn_pgb' || substr(md5(random()::text), 1, 24), 'capture', :programme_id::text,
            :supplier_id::text, NULL, clock_timestamp() AT TIME ZONE 'UTC', 'Coaching session',
            CAST('{"voucher_id":"' || :voucher_id::text || '"}' AS JSON))
    ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at),
p AS (INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, created_at)
    SELECT t.id, v.account_code, v.amount, v.currency, t.created_at FROM t
    CROSS JOIN (VALUES ('voucher:' || :voucher_id::text, -(:amount)::bigint, 'EUR'),
                       ('supplier:' || :supplier_id::text || ':' || 'payable:' || :programme_id::text,
                        (:amount)::bigint, 'EUR'))
        AS v(account_code, amount, currency)),
q AS (INSERT INTO ledger_seal_queue (transaction_id) SELECT id FROM t)
SELECT count(*) FROM t;
UPDATE ledger_accounts SET balance = balance + (:amount)::bigint
    WHERE code = 'supplier:' || :supplier_id::text || ':' || 'payable:' || :programme_id::text AND currency = 'EUR'
      AND (may_go_negative OR balance + (:amount)::bigint >= 0) RETURNING balance;
UPDATE ledger_accounts SET balance = balance - (:amount)::bigint
    WHERE code = 'voucher:' || :voucher_id::text AND currency = 'EUR'
      AND (may_go_negative OR balance - (:amount)::bigint >= 0) RETURNING balance;
INSERT INTO redemptions (id, voucher_id, programme_id, supplier_id, group_id, amount,
        refunded_amount, currency, service_category, description, delivered_on, evidence,
        status, created_at, hold_expires_at, decided_at, void_reason, settlement_id)
    VALUES ('red_pgb' || substr(md5(random()::text), 1, 24), :voucher_id::text, :programme_id::text,
            :supplier_id::text, :group_id::text, (:amount)::bigint, 0, 'EUR', 'leadership',
            'Coaching session', current_date, CAST('[{"kind": "invoice", "reference": "INV-1"}]' AS JSON),
            'captured', clock_timestamp() AT TIME ZONE 'UTC', NULL,
            clock_timestamp() AT TIME ZONE 'UTC', NULL, NULL);
COMMIT;
