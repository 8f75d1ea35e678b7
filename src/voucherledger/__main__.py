"""``python -m voucherledger``: the same command as ``voucherledger``."""

from voucherledger.cli import main

main()
