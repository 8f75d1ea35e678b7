-- The signing key history is append-only, like the rest of the ledger (statements
-- separated by ---); vl_refuse_change() is defined by 0001_foundation.
CREATE TRIGGER ledger_signing_keys_append_only BEFORE UPDATE OR DELETE ON ledger_signing_keys
    FOR EACH ROW EXECUTE FUNCTION vl_refuse_change()
---
CREATE TRIGGER ledger_signing_keys_no_truncate BEFORE TRUNCATE ON ledger_signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION vl_refuse_change()
