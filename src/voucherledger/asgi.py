"""The ASGI application for uvicorn: ``uvicorn voucherledger.asgi:app``."""

from voucherledger.app import create_app

app = create_app()
