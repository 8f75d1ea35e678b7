"""Claims on vouchers by suppliers: holds, confirmation, refunds, feedback."""
