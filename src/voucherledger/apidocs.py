"""``/docs``: Swagger UI served from the package, so it works offline.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script.
Here the page, the vendored Swagger UI (``static/vendor/``, see its README) and the
script that starts it are all the app's own, and the page carries a
Content-Security-Policy that allows nothing else: no other origin, no inline script,
no inline style. ReDoc, which would load from a CDN too, is not served.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from voucherledger.core.observability import Labelled

STATIC_URL = "/static"

# Swagger UI sets element styles through the DOM (allowed by style-src 'self');
# it needs no inline <style>, eval or other origin. img-src data: for its icons.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API documentation</title>
<link rel="icon" type="image/png" href="{static}/vendor/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="{static}/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{static}/swagger-init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve ``/static`` from the package, the Swagger UI page at ``/docs`` and the
    OpenAPI document at ``/openapi.json``, each counted under its own route name.

    The app is made with ``docs_url``, ``redoc_url`` and ``openapi_url`` None: FastAPI's
    own routes for them are plain Starlette routes, which the metrics cannot name.
    """
    files = StaticFiles(packages=[("voucherledger", "static")])
    app.mount(STATIC_URL, Labelled(files, STATIC_URL), name="static")
    page = _PAGE.format(title=app.title, static=STATIC_URL)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        document: dict[str, Any] = app.openapi()
        return JSONResponse(document)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})
