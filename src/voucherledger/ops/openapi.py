"""The OpenAPI document of the API, as committed in ``openapi/openapi.json``.

The committed file is the source of truth of the HTTP contract; ``voucherledger
openapi`` (``make openapi``) rewrites it from the app, ``--check`` fails when it
is stale. The app is built against a throw-away SQLite URL in a temporary
directory, so exporting never touches a real database or signing key.
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI

# The committed contract, relative to a checkout's root (where `make openapi` runs).
OPENAPI_FILE = Path("openapi") / "openapi.json"


def render(app: FastAPI | None = None) -> str:
    """The app's OpenAPI document: JSON, sorted keys, indent 2, trailing newline."""
    document = app.openapi() if app is not None else export_document()
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def export_document() -> dict[str, Any]:
    from voucherledger.app import create_app
    from voucherledger.core.settings import Settings

    with tempfile.TemporaryDirectory(prefix="voucherledger-openapi-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'unused.db'}",
            signing_key=secrets.token_hex(32),  # throw-away: nothing is signed
            signing_key_file=Path(tmp) / "unused-signing-key",
            sealer_enabled=False,
            log_level="WARNING",
        )
        app = create_app(settings)
        try:
            return app.openapi()
        finally:
            app.state.engine.dispose()


def main(check: bool = False, path: Path = OPENAPI_FILE) -> int:
    """Write the document to ``path``; with ``check``, only compare (1 if stale)."""
    rendered = render()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != rendered:
            print(f"{path} is out of date with the app: run `make openapi`.", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
