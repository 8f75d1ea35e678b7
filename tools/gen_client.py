"""Generate ``src/voucherledger/client/_operations.py`` from ``openapi/openapi.json``.

One method per operationId (same name) for the sync and the async client, and an
``iter_<operation_id>`` for every paginated list. ``make client`` writes the file;
``--check`` (run by ``make lint``) fails if the checked-in file is stale.
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "openapi" / "openapi.json"
TARGET = ROOT / "src" / "voucherledger" / "client" / "_operations.py"
METHODS = ("get", "post", "put", "patch", "delete")
TEXT_TYPES = ("text/", "application/xml", "image/svg+xml", "application/x-ndjson")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref: str = schema["$ref"]
        node: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    return options[0] if len(options) == 1 else {"anyOf": options}


def _py_type(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[str, str]:
    """The annotation of a query parameter, and how it is sent (plain, list, date, object)."""
    schema = _non_null(_resolve(spec, schema))
    kind = schema.get("type")
    if kind == "integer":
        return "int", "plain"
    if kind == "number":
        return "float", "plain"
    if kind == "boolean":
        return "bool", "plain"
    if kind == "array":
        return "Sequence[str]", "list"
    if kind == "object":
        return "Mapping[str, str]", "object"
    if kind == "string" and schema.get("format") in ("date-time", "date"):
        return "str | datetime", "date"
    return "str", "plain"


def _ident(name: str) -> str:
    ident = re.sub(r"\W", "_", name).strip("_") or "param"
    return ident + "_" if keyword.iskeyword(ident) else ident


def _response_kind(op: dict[str, Any]) -> str:
    """What a 2xx answer is: ``none`` (204), ``json``, ``text``, ``bytes`` or ``any``."""
    types: set[str] = set()
    empty = False
    for status, response in op.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        content = response.get("content") or {}
        if status == "204" or not content:
            empty = status == "204" or empty
        types.update(content)
    if not types:
        return "none" if empty else "any"
    if types == {"application/json"}:
        return "json"
    if "application/json" in types:
        return "any"
    if all(t.startswith(TEXT_TYPES) for t in types):
        return "text"
    return "bytes"


RETURNS = {"none": "None", "json": "Any", "text": "str", "bytes": "bytes", "any": "Any"}


def _paging(spec: dict[str, Any], op: dict[str, Any], query: list[str]) -> tuple[str, str] | None:
    """(request parameter, answer field) of a paginated list, or None."""
    ok = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json")
    if not ok:
        return None
    props = _resolve(spec, ok.get("schema", {})).get("properties", {})
    if "data" not in props:
        return None
    for param, field in (("cursor", "next_cursor"), ("after", "next_after")):
        if param in query and field in props:
            return param, field
    return None


def _docstring(op: dict[str, Any], method: str, path: str, indent: str) -> list[str]:
    text = op.get("summary") or op["operationId"]
    description = (op.get("description") or "").strip()
    lines = [text.rstrip(".") + "."]
    if description:
        lines += ["", *description.splitlines()]
    lines += ["", f"``{method.upper()} {path}``"]
    lines = [line.replace("\\", "\\\\").replace('"""', "'''") for line in lines]
    out = [f'{indent}"""{lines[0]}']
    out += [f"{indent}{line}".rstrip() for line in lines[1:]]
    out.append(f'{indent}"""')
    return out


class Operation:
    def __init__(self, spec: dict[str, Any], method: str, path: str, op: dict[str, Any]) -> None:
        self.method, self.path, self.op = method, path, op
        self.name: str = op["operationId"]
        params = op.get("parameters", [])
        self.path_params = re.findall(r"{(\w+)}", path)
        self.query: list[tuple[str, str, str, str]] = []  # (wire, ident, annotation, how)
        for p in params:
            if p.get("in") != "query":
                continue
            annotation, how = _py_type(spec, p.get("schema", {}))
            self.query.append((p["name"], _ident(p["name"]), annotation, how))
        content = op.get("requestBody", {}).get("content", {})
        self.body = "json" if "application/json" in content else None
        if self.body is None and "multipart/form-data" in content:
            self.body = "multipart"
        self.kind = _response_kind(op)
        self.paging = _paging(spec, op, [q[0] for q in self.query])

    def signature(self, *, for_iter: bool = False) -> list[str]:
        args = ["self", *[f"{_ident(p)}: str" for p in self.path_params]]
        keywords: list[str] = []
        for wire, ident, annotation, _ in self.query:
            if for_iter and self.paging and wire == self.paging[0]:
                keywords.append(f"{ident}: str | None = None")
                continue
            keywords.append(f"{ident}: {annotation} | None = None")
        if self.body == "json":
            keywords.append("body: Mapping[str, Any] | None = None")
        elif self.body == "multipart":
            keywords.append("files: Mapping[str, Any]")
            keywords.append("data: Mapping[str, str] | None = None")
        if self.method == "post":
            keywords.append("idempotency_key: str | None = None")
        keywords.append("headers: Mapping[str, str] | None = None")
        return args + (["*", *keywords] if keywords else [])

    def call_args(self, cursor_value: str | None = None) -> list[str]:
        path = self.path
        for p in self.path_params:
            path = path.replace("{" + p + "}", "{_path(" + _ident(p) + ")}")
        fmt = "f" if self.path_params else ""
        out = [f'"{self.method.upper()}"', f'{fmt}"{path}"']
        if self.query:
            entries = []
            for wire, ident, _, how in self.query:
                value = (
                    cursor_value
                    if cursor_value and self.paging and wire == self.paging[0]
                    else ident
                )
                entries.append(f'("{wire}", {value}, "{how}")')
            out.append("params=_query(" + ", ".join(entries) + ",)")
        if self.body == "json":
            out.append("json=body")
        elif self.body == "multipart":
            out.append("files=files")
            out.append("data=data")
        if self.method == "post":
            out.append("idempotency_key=idempotency_key")
        out.append("headers=headers")
        out.append(f'expect="{self.kind}"')
        return out


def _method(operation: Operation, is_async: bool) -> list[str]:
    prefix = "async def" if is_async else "def"
    ret = RETURNS[operation.kind]
    sig = ", ".join(operation.signature())
    lines = [f"    {prefix} {operation.name}({sig}) -> {ret}:"]
    lines += _docstring(operation.op, operation.method, operation.path, " " * 8)
    awaited = "await " if is_async else ""
    call = ", ".join(operation.call_args())
    if ret == "None":
        lines.append(f"        {awaited}self._request({call})")
    else:
        lines.append(f"        result: {ret} = {awaited}self._request({call})")
        lines.append("        return result")
    lines.append("")
    if operation.paging:
        param, field = operation.paging
        iter_sig = ", ".join(operation.signature(for_iter=True))
        it = "AsyncIterator[Any]" if is_async else "Iterator[Any]"
        lines.append(f"    {prefix} iter_{operation.name}({iter_sig}) -> {it}:")
        lines.append(f'        """Every item of ``{operation.name}``, across its pages.')
        lines.append("")
        lines.append(f'        ``{param}`` follows ``{field}``."""')
        call = ", ".join(operation.call_args(cursor_value="_token"))
        lines.append(f"        _token = {_ident(param)}")
        lines.append("        while True:")
        lines.append(f"            page = {awaited}self._request({call})")
        lines.append('            items = page.get("data") or []')
        if is_async:
            lines.append("            for item in items:")
            lines.append("                yield item")
        else:
            lines.append("            yield from items")
        lines.append(f'            _token = page.get("{field}")')
        lines.append('            if not _token or not items or page.get("has_more") is False:')
        lines.append("                return")
        lines.append("")
    return lines


HEADER = '''"""The API's operations, one method per OpenAPI operationId (sync and async).

Generated by ``tools/gen_client.py`` from ``openapi/openapi.json``: do not edit by hand,
run ``make client``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from voucherledger.client._base import AsyncTransportMixin, SyncTransportMixin, _path, _query

__all__ = ["AsyncOperations", "SyncOperations"]
'''


def render(spec: dict[str, Any]) -> str:
    operations = [
        Operation(spec, method, path, item[method])
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    ]
    operations.sort(key=lambda o: o.name)
    out = [HEADER, ""]
    for cls, base, is_async in (
        ("SyncOperations", "SyncTransportMixin", False),
        ("AsyncOperations", "AsyncTransportMixin", True),
    ):
        kind = "async (httpx.AsyncClient)" if is_async else "sync (httpx.Client)"
        out.append(f"class {cls}({base}):")
        out.append(f'    """Every operation of the API, {kind}."""')
        out.append("")
        for operation in operations:
            out += _method(operation, is_async)
        out.append("")
    return _format("\n".join(out))


def _format(source: str) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    command = str(ruff) if ruff.exists() else shutil.which("ruff")
    if command is None:
        raise SystemExit("ruff is needed to format the generated client")
    for args in (["check", "--fix-only", "--quiet"], ["format"]):
        done = subprocess.run(  # noqa: S603 - our own tool, fixed arguments
            [command, *args, "--stdin-filename", str(TARGET), "-"],
            input=source,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if done.returncode not in (0, 1) or not done.stdout:
            raise SystemExit(f"ruff failed on the generated client: {done.stderr}")
        source = done.stdout
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    source = render(json.loads(SPEC.read_text(encoding="utf-8")))
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != source:
            print(f"{TARGET.relative_to(ROOT)} is stale: run `make client`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(source, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
