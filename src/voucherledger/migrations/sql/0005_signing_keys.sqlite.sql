-- The signing key history is append-only, like the rest of the ledger (statements separated by ---).
CREATE TRIGGER ledger_signing_keys_no_update BEFORE UPDATE ON ledger_signing_keys
BEGIN SELECT RAISE(ABORT, 'voucherledger: UPDATE on ledger_signing_keys is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_signing_keys_no_delete BEFORE DELETE ON ledger_signing_keys
BEGIN SELECT RAISE(ABORT, 'voucherledger: DELETE on ledger_signing_keys is refused: the ledger is append-only'); END
