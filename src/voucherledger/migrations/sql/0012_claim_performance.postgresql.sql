-- Issue 14: what PostgreSQL spent on every claim (docs/performance.md, "The database
-- side of a claim"). Statements separated by ---.
--
-- 1. The planner's view of ledger_postings.transaction_id. ANALYZE of a journal that
--    holds one batch issuance (10,000 postings in one transaction) finds a handful of
--    distinct values, so a generic plan expects thousands of postings per transaction
--    and reads the whole table for the balance trigger's look-ups (every claim, twice).
--    A transaction has two postings in the usual case, a few thousand at most in a
--    batch: about one distinct transaction per two postings, whatever ANALYZE samples.
ALTER TABLE ledger_postings ALTER COLUMN transaction_id SET (n_distinct = -0.5)
---
ANALYZE ledger_postings
---
-- 2. The balance trigger (guarantee 2, migration 0001): the same rule, checked once per
--    transaction by its last posting, with two index reads instead of three, none of
--    which a plan can turn into a scan of the table: "is there a later posting" is
--    max(id), a one-row backward scan of ix_ledger_postings_transaction_id_id; the last
--    posting then counts the legs and finds an unbalanced currency in one read.
CREATE OR REPLACE FUNCTION vl_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_id bigint;
    legs bigint;
    bad_currency text;
    bad_total numeric;
BEGIN
    SELECT max(id) INTO last_id FROM ledger_postings WHERE transaction_id = NEW.transaction_id;
    IF last_id > NEW.id THEN
        RETURN NULL;
    END IF;
    -- Every currency's sum, the unbalanced ones first: the first row says all.
    SELECT sum(per_currency.n) OVER (), per_currency.currency, per_currency.total
        INTO legs, bad_currency, bad_total
        FROM (SELECT currency, count(*) AS n, sum(amount) AS total FROM ledger_postings
              WHERE transaction_id = NEW.transaction_id GROUP BY currency) AS per_currency
        ORDER BY per_currency.total = 0, per_currency.currency
        LIMIT 1;
    IF legs < 2 THEN
        RAISE EXCEPTION 'voucherledger: transaction % has % posting(s); at least two are needed',
            NEW.transaction_id, legs USING ERRCODE = 'check_violation';
    END IF;
    IF bad_total <> 0 THEN
        RAISE EXCEPTION 'voucherledger: transaction % does not balance: % %',
            NEW.transaction_id, bad_total, bad_currency USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$
---
-- 3. Balance rows: two UPDATEs per claim, of a column no index covers. Room on each
--    page lets them stay heap-only (HOT): no new index entry, and the old version is
--    pruned on the page. Applies to pages written from now on.
ALTER TABLE ledger_accounts SET (fillfactor = 80)
