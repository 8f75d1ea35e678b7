"""The offline verifier gives a verdict on every file, however malformed: never a
traceback. Each malformed line is named ("FAILED at line N: reason", exit 1) through
``verify_lines`` and through ``voucherledger verify FILE``; hypothesis mutates a good
export's bytes and lines and both must still answer, and agree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voucherledger
from voucherledger.ledger.canonical import (
    GENESIS_HASH,
    block_object,
    canonical_json,
    chain_hash,
    transaction_object,
)
from voucherledger.ledger.export import MANIFEST_FORMAT
from voucherledger.ledger.signing import Signer
from voucherledger.ledger.verify import FileResult, verify_file, verify_lines

CLI = Path(sys.executable).parent / "voucherledger"
# The CLI runs the package these tests import (a worktree's, under PYTHONPATH=src).
CLI_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(voucherledger.__file__).parents[1])}
COMPACT = (",", ":")  # as the service writes its lines
SIGNER = Signer.from_seed(b"\x66" * 32)


def good_export(
    count: int = 6, per_block: int = 2, redacted: frozenset[int] = frozenset({3, 5})
) -> list[str]:
    """A small valid export made here: ``count`` transactions in blocks of
    ``per_block``, the ``redacted`` sequences withheld, and the signed manifest."""
    out: list[str] = []
    prev, height, first, credits, shown = GENESIS_HASH, 0, 1, 0, 0
    block_prev = GENESIS_HASH
    for sequence in range(1, count + 1):
        record = transaction_object(
            sequence=sequence,
            id=f"txn_{sequence:026d}",
            kind="deposit",
            programme_id="prg_01",
            actor=None,
            idempotency_key=None,
            created_at="2027-01-01T00:00:00.000000Z",
            memo="Réf. 😀",
            metadata={"n": sequence},
            postings=[
                {"account": "funder:f:EUR", "amount": -sequence, "currency": "EUR"},
                {"account": "programme:p:unissued", "amount": sequence, "currency": "EUR"},
            ],
        )
        digest = chain_hash(prev, canonical_json(record))
        if sequence in redacted:
            line: dict[str, Any] = {
                "type": "redacted",
                "sequence": sequence,
                "prev_hash": prev,
                "hash": digest,
            }
        else:
            credits += sequence
            shown += 1
            line = {"type": "transaction", **record, "prev_hash": prev, "hash": digest}
            line["block_height"] = (sequence + per_block - 1) // per_block
        out.append(json.dumps(line, separators=COMPACT, ensure_ascii=False))
        prev = digest
        if sequence % per_block == 0 or sequence == count:
            height += 1
            block = block_object(
                height=height,
                first_sequence=first,
                last_sequence=sequence,
                prev_hash=block_prev,
                hash=prev,
                sealed_at="2027-01-01T00:00:01.000000Z",
            )
            first, block_prev = sequence + 1, prev
            signed = {**block, "signature": SIGNER.sign(canonical_json(block))}
            out.append(
                json.dumps(
                    {"type": "block", **signed, "public_key": SIGNER.public_key_hex},
                    separators=COMPACT,
                )
            )
    manifest: dict[str, Any] = {
        "type": "manifest",
        "format": MANIFEST_FORMAT,
        "programme_ids": ["prg_01"],
        "since": None,
        "until": None,
        "transactions": shown,
        "credits_by_currency": {"EUR": credits},
        "last_sequence": count,
        "block_height": height,
        "head_hash": prev,
        "exported_at": "2027-01-02T00:00:00.000000Z",
        "public_key": SIGNER.public_key_hex,
        "signing_keys": [
            {
                "position": 1,
                "public_key": SIGNER.public_key_hex,
                "first_height": 1,
                "recorded_at": "2027-01-01T00:00:00.000000Z",
                "endorsement": None,
                "unendorsed_reason": None,
            }
        ],
    }
    manifest["signature"] = SIGNER.sign(canonical_json(manifest))
    out.append(json.dumps(manifest, separators=COMPACT))
    return out


GOOD = good_export()


def _index(kind: str, nth: int = 0) -> int:
    return [i for i, text in enumerate(GOOD) if json.loads(text)["type"] == kind][nth]


def _with(index: int, text: str) -> list[str]:
    return [*GOOD[:index], text, *GOOD[index + 1 :]]


def _edit(index: int, change: Callable[[dict[str, Any]], object]) -> list[str]:
    line = json.loads(GOOD[index])
    change(line)
    return _with(index, json.dumps(line))


def _replace(index: int, old: str, new: str) -> list[str]:
    assert old in GOOD[index], (old, GOOD[index])
    return _with(index, GOOD[index].replace(old, new, 1))


TXN = _index("transaction", 1)
BLOCK = _index("block", 1)
REDACTED = _index("redacted")
MANIFEST = len(GOOD) - 1


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# name -> (lines, or bytes for a raw file; the 1-based line the verdict must name)
MALFORMED: dict[str, tuple[list[str] | bytes, int]] = {
    "bad-utf8": (
        "\n".join(GOOD[:TXN]).encode()
        + b"\n"
        + GOOD[TXN].encode()[:40]
        + b"\xff\xfe"
        + GOOD[TXN].encode()[40:]
        + b"\n"
        + "\n".join(GOOD[TXN + 1 :]).encode()
        + b"\n",
        TXN + 1,
    ),
    "cut-utf8": (
        "\n".join(GOOD[:TXN]).encode() + b"\n" + "😀".encode()[:2] + b"\n",
        TXN + 1,
    ),
    "nan-amount": (_replace(TXN, '"amount":-2', '"amount":NaN'), TXN + 1),
    "infinity-metadata": (_replace(TXN, '"n":2', '"n":Infinity'), TXN + 1),
    "minus-infinity-block": (_replace(BLOCK, '"height":2', '"height":-Infinity'), BLOCK + 1),
    "float-overflow": (_replace(TXN, '"n":2', '"n":1e400'), TXN + 1),
    "nan-not-chained": (_replace(TXN, '"block_height":1', '"block_height":NaN'), TXN + 1),
    "nan-manifest": (_replace(MANIFEST, '"since":null', '"since":NaN'), MANIFEST + 1),
    "block-no-height": (_edit(BLOCK, lambda b: b.pop("height")), BLOCK + 1),
    "block-no-last-sequence": (_edit(BLOCK, lambda b: b.pop("last_sequence")), BLOCK + 1),
    "block-no-hash": (_edit(BLOCK, lambda b: b.pop("hash")), BLOCK + 1),
    "block-height-string": (_edit(BLOCK, lambda b: b.update(height="2")), BLOCK + 1),
    "block-only-type": (_with(BLOCK, '{"type":"block"}'), BLOCK + 1),
    "json-array-line": (_with(TXN, "[1, 2]"), TXN + 1),
    "json-string-line": (_with(TXN, '"transaction"'), TXN + 1),
    "postings-object": (_edit(TXN, lambda t: t.update(postings={"a": 1})), TXN + 1),
    "postings-string": (_edit(TXN, lambda t: t.update(postings="legs")), TXN + 1),
    "postings-null": (_edit(TXN, lambda t: t.update(postings=None)), TXN + 1),
    "posting-not-object": (_edit(TXN, lambda t: t.update(postings=[1, "x", None])), TXN + 1),
    "sequence-string": (_edit(TXN, lambda t: t.update(sequence="2")), TXN + 1),
    "sequence-list": (_edit(TXN, lambda t: t.update(sequence=[2])), TXN + 1),
    "redacted-hash-not-hex": (
        _edit(REDACTED, lambda r: r.update(hash="z" * 64)),
        REDACTED + 1,
    ),
    "lone-surrogate-memo": (_replace(TXN, '"memo":"', '"memo":"\\ud800'), TXN + 1),
    "lone-surrogate-key": (
        _replace(MANIFEST, '"public_key":"', '"public_key":"\\udfff'),
        MANIFEST + 1,
    ),
    "deep-nesting": (_replace(TXN, '"n":2', '"n":' + _deep(100_000)), TXN + 1),
    "deep-nesting-a-little": (_replace(TXN, '"n":2', '"n":' + _deep(600)), TXN + 1),
    "deep-line-alone": (_with(TXN, _deep(50_000)), TXN + 1),
    "signing-keys-odd": (
        _edit(MANIFEST, lambda m: m.update(signing_keys=[{"position": "1"}])),
        MANIFEST + 1,
    ),
}


def _lines_of(data: list[str] | bytes) -> list[str]:
    raw = (
        data
        if isinstance(data, bytes)
        else ("\n".join(data) + "\n").encode("utf-8", "surrogatepass")
    )
    return raw.decode("utf-8", "surrogateescape").splitlines(keepends=True)


def _raw(data: list[str] | bytes) -> bytes:
    if isinstance(data, bytes):
        return data
    return ("\n".join(data) + "\n").encode("utf-8", "surrogatepass")


def _cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [str(CLI), "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=CLI_ENV,
    )


def test_the_good_export_verifies() -> None:
    result = verify_lines(iter(GOOD))
    assert result.ok, result
    assert result.transactions == 4


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_file_gets_a_verdict_at_its_line(name: str, tmp_path: Path) -> None:
    data, line = MALFORMED[name]
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(_raw(data))
    result = verify_file(path)
    assert not result.ok, (name, result)
    assert result.line == line, (name, result)
    assert result.error, (name, result)
    assert "\n" not in result.error, (name, result)
    if not isinstance(data, bytes):
        # The same lines given as strings: the same verdict.
        assert verify_lines(iter(data)) == result
    done = _cli(path)
    assert done.returncode == 1, (name, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, (name, done.stderr)
    assert done.stdout == f"FAILED at line {line}: {result.error}\n", (name, done.stdout)


def test_the_reasons_are_plain() -> None:
    def reason(name: str) -> str:
        data = MALFORMED[name][0]
        result = verify_lines(iter(_lines_of(data)))
        assert result.error is not None
        return result.error

    assert reason("bad-utf8") == "chain: the file is not UTF-8 text"
    assert reason("nan-amount") == "chain: a value has no canonical form (NaN)"
    assert reason("float-overflow") == "chain: a value has no canonical form (infinity)"
    assert reason("minus-infinity-block") == "chain: a value has no canonical form (infinity)"
    assert reason("json-array-line") == "chain: not a JSON object"
    assert reason("block-no-height") == "chain: the block has no integer height"
    assert reason("block-height-string") == "chain: the block has no integer height"
    assert reason("redacted-hash-not-hex") == "sequence 3: has no valid hash"
    assert "lone surrogate" in reason("lone-surrogate-memo")
    assert "nested more than" in reason("deep-nesting")
    assert "nested more than" in reason("deep-line-alone")


def test_the_checkpoint_and_history_files_are_refused_plainly(tmp_path: Path) -> None:
    path = tmp_path / "good.jsonl"
    path.write_bytes(_raw(GOOD))
    for text in ("[1]", "{}", '{"public_key": 1, "height": "x"}'):
        (tmp_path / "point.json").write_text(text)
        done = subprocess.run(  # noqa: S603
            [str(CLI), "verify", str(path), "--checkpoint", str(tmp_path / "point.json")],
            capture_output=True,
            text=True,
            check=False,
            env=CLI_ENV,
        )
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode in (1, 2), (text, done)


# --- fuzzing: any mutation of a good export gets a verdict, and the CLI agrees ----

RAW = _raw(GOOD)

mutation = st.one_of(
    st.tuples(st.just("byte"), st.integers(0, len(RAW) - 1), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, len(RAW)), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, len(RAW) - 1), st.integers(1, 40)),
    st.tuples(
        st.just("line"),
        st.integers(0, len(GOOD) - 1),
        st.sampled_from(
            [
                "",
                "null",
                "[]",
                "{}",
                "1",
                '"x"',
                "NaN",
                '{"type":"block"}',
                '{"type":"transaction"}',
                '{"type":"redacted"}',
                '{"type":"manifest"}',
                '{"type":"block","height":[],"last_sequence":{},"hash":1}',
                _deep(5000),
                '{"type":"transaction","sequence":1,"postings":"x"}',
                '{"type":"manifest","signing_keys":[{"position":1,"first_height":1,"public_key":"\\ud800"}]}',
            ]
        ),
    ),
    st.tuples(st.just("drop"), st.integers(0, len(GOOD) - 1), st.just(0)),
    st.tuples(st.just("dup"), st.integers(0, len(GOOD) - 1), st.integers(0, len(GOOD) - 1)),
)


def _mutate(raw: bytes, steps: list[tuple[str, int, Any]]) -> bytes:
    for kind, at, what in steps:
        lines = raw.split(b"\n")
        if kind == "byte":
            at %= max(len(raw), 1)
            raw = raw[:at] + bytes([what]) + raw[at + 1 :]
        elif kind == "insert":
            raw = raw[:at] + what + raw[at:]
        elif kind == "delete":
            raw = raw[:at] + raw[at + what :]
        elif kind == "line":
            lines[at % len(lines)] = what.encode()
            raw = b"\n".join(lines)
        elif kind == "drop":
            del lines[at % len(lines)]
            raw = b"\n".join(lines)
        else:
            lines.insert(what % len(lines), lines[at % len(lines)])
            raw = b"\n".join(lines)
    return raw


def _verdict(result: FileResult) -> str:
    if result.ok:
        return f"OK {result.transactions} transaction(s), head {result.head_hash}"
    return f"FAILED at line {result.line}: {result.error}"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(mutation, min_size=1, max_size=4))
def test_any_mutation_gets_a_verdict(steps: list[tuple[str, int, Any]]) -> None:
    raw = _mutate(RAW, steps)
    lines = raw.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    result = verify_lines(iter(lines))  # never raises
    assert result.ok or (result.line is not None and result.error), result
    if result.ok:
        assert result.transactions == 4


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(mutation, min_size=1, max_size=3))
def test_the_cli_agrees_on_any_mutation(steps: list[tuple[str, int, Any]], tmp_path: Path) -> None:
    raw = _mutate(RAW, steps)
    path = tmp_path / "mutated.jsonl"
    path.write_bytes(raw)
    result = verify_file(path)
    done = _cli(path)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == (0 if result.ok else 1), (done.stdout, result)
    assert done.stdout.splitlines()[0] == _verdict(result)


# --- the console's verifier (static/console/verify.js) run by Node, when there is one:
# the same verdict, line and reason as Python on every malformed file and mutation.
# (tests/console/test_verify_browser.py compares them in Chromium, on fewer files.)

NODE = shutil.which("node")
VERIFY_JS = Path(voucherledger.__file__).parent / "static" / "console" / "verify.js"
HARNESS = """
const fs = require("fs"), vm = require("vm");
const window = {};
const context = { window, document: { addEventListener() {} }, crypto: globalThis.crypto,
  TextDecoder, TextEncoder, Uint8Array, Map, BigInt, Math, Number, String, Object, Array,
  RegExp, isNaN, isFinite, parseInt, Error, TypeError };
vm.createContext(context);
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), context);
(async () => {
  const out = [];
  for (const path of process.argv.slice(2)) {
    const r = await window.voucherledgerVerify.verifyFile(
      new Blob([fs.readFileSync(path)]), [], () => {});
    out.push([r.ok, r.line, r.reason]);
  }
  console.log(JSON.stringify(out));
})();
"""


def _node(paths: list[Path]) -> list[tuple[bool, int | None, str]]:
    assert NODE is not None
    done = subprocess.run(  # noqa: S603 - node on our own script
        [NODE, "-e", HARNESS, str(VERIFY_JS), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [(ok, line, reason) for ok, line, reason in json.loads(done.stdout)]


def _python(path: Path) -> tuple[bool, int | None, str]:
    result = verify_file(path)
    return result.ok, result.line, result.error or ""


@pytest.mark.skipif(NODE is None, reason="no node to run verify.js")
def test_the_page_verifier_agrees_on_every_malformed_file(tmp_path: Path) -> None:
    paths = [tmp_path / "good.jsonl"]
    paths[0].write_bytes(RAW)
    for name, (data, _) in sorted(MALFORMED.items()):
        paths.append(tmp_path / f"{name}.jsonl")
        paths[-1].write_bytes(_raw(data))
    assert _node(paths) == [_python(path) for path in paths]


@pytest.mark.skipif(NODE is None, reason="no node to run verify.js")
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.lists(mutation, min_size=1, max_size=4), min_size=10, max_size=10))
def test_the_page_verifier_agrees_on_any_mutation(
    steps: list[list[tuple[str, int, Any]]], tmp_path: Path
) -> None:
    paths = []
    for number, mutations in enumerate(steps):
        paths.append(tmp_path / f"mutated-{number}.jsonl")
        paths[-1].write_bytes(_mutate(RAW, mutations))
    assert _node(paths) == [_python(path) for path in paths]
