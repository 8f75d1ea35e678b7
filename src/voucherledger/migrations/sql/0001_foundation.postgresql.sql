-- The ledger's guarantees, enforced by PostgreSQL itself (statements separated by ---).
-- 1. Append-only: journal transactions, postings, seals and seal blocks are never
--    updated, deleted or truncated.
CREATE FUNCTION vl_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'voucherledger: % on % is refused: the ledger is append-only',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END
$$
---
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_seals_append_only BEFORE UPDATE OR DELETE ON ledger_seals
    FOR EACH ROW EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_seals_no_truncate BEFORE TRUNCATE ON ledger_seals
    FOR EACH STATEMENT EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_seal_blocks_append_only BEFORE UPDATE OR DELETE ON ledger_seal_blocks
    FOR EACH ROW EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_seal_blocks_no_truncate BEFORE TRUNCATE ON ledger_seal_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION vl_refuse_change()
---
-- Ledger accounts: only the balance ever changes; an account is never removed.
CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_accounts_fixed_terms BEFORE UPDATE OF code, currency, may_go_negative
    ON ledger_accounts FOR EACH ROW
    WHEN (OLD.code IS DISTINCT FROM NEW.code OR OLD.currency IS DISTINCT FROM NEW.currency
          OR OLD.may_go_negative IS DISTINCT FROM NEW.may_go_negative)
    EXECUTE FUNCTION vl_refuse_change()
---
-- 2. Balanced: at COMMIT, every transaction that received postings has at least two,
--    and they sum to zero in every currency. The trigger fires for every posting, but
--    only the transaction's last posting does the check: once per transaction, so a
--    transaction with 10,000 postings costs 10,000 index probes, not 10,000 sums.
CREATE FUNCTION vl_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE CONSTRAINT TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION vl_check_balanced()
