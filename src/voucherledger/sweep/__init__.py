"""The sweep: timed-out holds released and vouchers past their expiry ended, for a
programme (the API route) or every programme (``voucherledger sweep``, for cron)."""
