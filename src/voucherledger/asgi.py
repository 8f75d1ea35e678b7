"""The ASGI application for uvicorn: ``uvicorn voucherledger.asgi:app``."""

from voucherledger.app import create_app
from voucherledger.ops.supervision import watch_supervisor_from_env

app = create_app()
watch_supervisor_from_env()  # a worker of `serve --workers N` exits with its supervisor
