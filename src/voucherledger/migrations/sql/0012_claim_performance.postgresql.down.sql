-- Migration 0012 undone: the statistics, the trigger function and the fillfactor as
-- migration 0001 left them. Statements separated by ---.
ALTER TABLE ledger_postings ALTER COLUMN transaction_id RESET (n_distinct)
---
ANALYZE ledger_postings
---
CREATE OR REPLACE FUNCTION vl_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    legs integer;
    bad record;
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_postings
               WHERE transaction_id = NEW.transaction_id AND id > NEW.id) THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO legs FROM ledger_postings WHERE transaction_id = NEW.transaction_id;
    IF legs < 2 THEN
        RAISE EXCEPTION 'voucherledger: transaction % has % posting(s); at least two are needed',
            NEW.transaction_id, legs USING ERRCODE = 'check_violation';
    END IF;
    SELECT currency, sum(amount) AS total INTO bad FROM ledger_postings
        WHERE transaction_id = NEW.transaction_id
        GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'voucherledger: transaction % does not balance: % %',
            NEW.transaction_id, bad.total, bad.currency USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$
---
ALTER TABLE ledger_accounts RESET (fillfactor)
