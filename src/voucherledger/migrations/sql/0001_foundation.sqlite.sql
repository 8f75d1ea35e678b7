-- The ledger's append-only guarantee, enforced by SQLite itself (statements separated by ---).
-- SQLite has no deferred triggers: balance per currency is checked by the code.
CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'voucherledger: UPDATE on ledger_transactions is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_transactions_no_delete BEFORE DELETE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'voucherledger: DELETE on ledger_transactions is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'voucherledger: UPDATE on ledger_postings is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'voucherledger: DELETE on ledger_postings is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_seals_no_update BEFORE UPDATE ON ledger_seals
BEGIN SELECT RAISE(ABORT, 'voucherledger: UPDATE on ledger_seals is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_seals_no_delete BEFORE DELETE ON ledger_seals
BEGIN SELECT RAISE(ABORT, 'voucherledger: DELETE on ledger_seals is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_seal_blocks_no_update BEFORE UPDATE ON ledger_seal_blocks
BEGIN SELECT RAISE(ABORT, 'voucherledger: UPDATE on ledger_seal_blocks is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_seal_blocks_no_delete BEFORE DELETE ON ledger_seal_blocks
BEGIN SELECT RAISE(ABORT, 'voucherledger: DELETE on ledger_seal_blocks is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
BEGIN SELECT RAISE(ABORT, 'voucherledger: DELETE on ledger_accounts is refused: the ledger is append-only'); END
---
CREATE TRIGGER ledger_accounts_fixed_terms BEFORE UPDATE OF code, currency, may_go_negative ON ledger_accounts
WHEN OLD.code IS NOT NEW.code OR OLD.currency IS NOT NEW.currency OR OLD.may_go_negative IS NOT NEW.may_go_negative
BEGIN SELECT RAISE(ABORT, 'voucherledger: the terms of a ledger account are fixed'); END
