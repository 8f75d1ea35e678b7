"""The page's verifier (static/console/verify.js) against the Python one, in Chromium.

A funder's programmes are funded, issued and sealed into several blocks through the
API of a live app (another funder's programme runs through the same chain, so the
funder's export withholds its positions); the funder's jsonl export is saved, then
edited in the ways a file is tampered with. Each copy is checked by the offline
verifier's own function (``verify_lines`` over the file opened as the CLI opens it)
and by the page, in the browser, chosen with the file input: both must give the same
verdict and name the same first faulty line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.factories.accounts import account_body
from tests.factories.browser import (
    DESKTOP,
    PHONE,
    Live,
    assert_accessible,
    browsing,
    chromium,
    live_app,
    person,
    screenshot,
    sign_in,
)
from tests.factories.programmes import programme_body
from voucherledger.core.exporttext import json_line
from voucherledger.core.settings import Settings
from voucherledger.ledger.canonical import canonical_json
from voucherledger.ledger.signing import Signer
from voucherledger.ledger.verify import FileResult, verify_file

pytestmark = pytest.mark.slow

EMAIL = "ama@funder.example"
OTHER = Signer.from_seed(b"\x44" * 32)
OTHER_KEY = OTHER.public_key_hex

Edit = Callable[[list[str]], list[str]]


def _seal(live: Live, headers: dict[str, str]) -> None:
    """Seal what is pending into a block (the checkpoint seals first)."""
    live.api("GET", "/v1/audit/checkpoint", headers)


def _story(live: Live) -> tuple[dict[str, str], str]:
    """Deposits and vouchers in a funder's programme and in another's, sealed into
    several blocks; the funder's key headers and its signed-in person's email."""
    funder = live.api("POST", "/v1/accounts", live.admin, json=account_body("funder"))
    other = live.api("POST", "/v1/accounts", live.admin, json=account_body("funder"))
    group = live.api("POST", "/v1/accounts", live.admin, json=account_body("group"))
    funds, others = live.key(funder["id"]), live.key(other["id"])
    mine = live.api(
        "POST", "/v1/programmes", funds, json=programme_body(name='Leaders "2027" — Accra')
    )
    theirs = live.api("POST", "/v1/programmes", others, json=programme_body(name="Elsewhere"))
    for round_ in range(3):
        for headers, programme in ((funds, mine), (others, theirs)):
            live.api(
                "POST",
                f"/v1/programmes/{programme['id']}/deposits",
                headers,
                json={"amount": 100_000 + round_, "reference": f"Réf. “grant” {round_} 😀 \\ ok"},
            )
            live.api(
                "POST",
                f"/v1/programmes/{programme['id']}/vouchers",
                headers,
                json={"group_id": group["id"], "amount": 4_000 + round_},
            )
        _seal(live, funds)
    person(live, funder["id"], EMAIL, "Ama Owusu")
    return funds, EMAIL


def _export(live: Live, funds: dict[str, str]) -> list[str]:
    response = live.http.get("/v1/audit/export", headers=funds, params={"format": "jsonl"})
    assert response.status_code == 200, response.text
    assert response.text.endswith("\n")
    return response.text.split("\n")[:-1]


def _types(lines: list[str]) -> list[str]:
    return [json.loads(line)["type"] for line in lines]


def _where(lines: list[str], kind: str, nth: int = 0) -> int:
    return [i for i, t in enumerate(_types(lines)) if t == kind][nth]


def _replace(lines: list[str], index: int, old: str, new: str) -> list[str]:
    assert old in lines[index], (old, lines[index])
    return [*lines[:index], lines[index].replace(old, new, 1), *lines[index + 1 :]]


def _amount_edit(lines: list[str]) -> list[str]:
    index = _where(lines, "transaction", 1)
    at = lines[index].index('"amount":') + len('"amount":') + 1
    digit = "7" if lines[index][at] != "7" else "8"
    return [*lines[:index], lines[index][:at] + digit + lines[index][at + 1 :], *lines[index + 1 :]]


def _amount_as(text: str) -> Edit:
    """An amount rewritten in another JSON form (a float, a huge integer)."""

    def edit(lines: list[str]) -> list[str]:
        index = _where(lines, "transaction", 2)
        record = json.loads(lines[index])
        amount = record["postings"][0]["amount"]
        return _replace(lines, index, f'"amount":{amount}', f'"amount":{text.format(amount)}')

    return edit


def _delete(lines: list[str]) -> list[str]:
    index = _where(lines, "transaction", 2)
    return [*lines[:index], *lines[index + 1 :]]


def _swap(lines: list[str]) -> list[str]:
    a, b = _where(lines, "transaction", 1), _where(lines, "transaction", 2)
    out = list(lines)
    out[a], out[b] = out[b], out[a]
    return out


def _flip_last_hex(field: str, kind: str, nth: int = 0) -> Edit:
    def edit(lines: list[str]) -> list[str]:
        index = _where(lines, kind, nth)
        value = json.loads(lines[index])[field]
        changed = value[:-1] + ("0" if value[-1] != "0" else "1")
        return _replace(lines, index, f'"{field}":"{value}"', f'"{field}":"{changed}"')

    return edit


def _block_key(lines: list[str]) -> list[str]:
    index = _where(lines, "block", 1)
    key = json.loads(lines[index])["public_key"]
    return _replace(lines, index, key, OTHER_KEY)


def _resigned_block(lines: list[str]) -> list[str]:
    """Block 2 signed again with a key of one's own: the signature verifies, but the
    key is not the trusted one, nor in the manifest's key history."""
    index = _where(lines, "block", 1)
    line = json.loads(lines[index])
    block = {k: v for k, v in line.items() if k not in ("type", "signature", "public_key")}
    line.update(signature=OTHER.sign(canonical_json(block)), public_key=OTHER_KEY)
    return [*lines[:index], json.dumps(line, separators=(",", ":")), *lines[index + 1 :]]


def _line_edit(kind: str, change: Callable[[dict[str, Any]], object], nth: int = 0) -> Edit:
    """A line of ``kind`` parsed, changed and written again."""

    def edit(lines: list[str]) -> list[str]:
        index = _where(lines, kind, nth)
        line = json.loads(lines[index])
        change(line)
        return [*lines[:index], json.dumps(line, separators=(",", ":")), *lines[index + 1 :]]

    return edit


def _in_line(kind: str, old: str, new: str, nth: int = 0) -> Edit:
    return lambda lines: _replace(lines, _where(lines, kind, nth), old, new)


def _bad_utf8(lines: list[str]) -> list[str]:
    """Bytes that are not UTF-8 in a line (written by ``_write`` as the bytes they
    stand for, ``errors="surrogateescape"``)."""
    index = _where(lines, "transaction", 1)
    text = lines[index]
    return [*lines[:index], text[:30] + "\udcff\udcc3" + text[30:], *lines[index + 1 :]]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _manifest_count(lines: list[str]) -> list[str]:
    manifest = json.loads(lines[-1])
    count = manifest["transactions"]
    return _replace(lines, len(lines) - 1, f'"transactions":{count}', f'"transactions":{count - 1}')


EDITS: dict[str, Edit] = {
    "good": list,
    "amount-digit": _amount_edit,
    "amount-as-float": _amount_as("{}.0"),
    "amount-huge": _amount_as("{}000000000000000000"),
    "line-deleted": _delete,
    "lines-swapped": _swap,
    "block-signature": _flip_last_hex("signature", "block", 1),
    "block-key": _block_key,
    "block-resigned": _resigned_block,
    "redacted-prev-hash": _flip_last_hex("prev_hash", "redacted", 1),
    "manifest-missing": lambda lines: lines[:-1],
    "manifest-cut": lambda lines: [*lines[:-1], lines[-1][: len(lines[-1]) // 2]],
    "manifest-count": _manifest_count,
    "manifest-signature": _flip_last_hex("signature", "manifest"),
    "after-manifest": lambda lines: [*lines, lines[0]],
    "half-the-file": lambda lines: lines[: len(lines) // 2],
    "blank-lines": lambda lines: ["", *lines[:3], "   ", *lines[3:], ""],
    # Malformed lines: each is a verdict at its line, never a crash (nor a traceback).
    "bad-utf8": _bad_utf8,
    "cut-utf8-at-end": lambda lines: [*lines[:4], "\udcf0\udc9f"],
    "amount-nan": _amount_as("NaN"),
    "amount-minus-infinity": _amount_as("-Infinity"),
    "amount-overflow": _amount_as("1e400"),
    "nan-not-chained": _in_line("transaction", '"block_height":', '"block_height":NaN,"x":'),
    "lone-surrogate": _in_line("transaction", '"kind":"', '"kind":"\\ud800', 1),
    "surrogate-pair": _in_line("transaction", '"kind":"', '"kind":"\\ud83d\\ude00', 1),
    "deep-nesting": _in_line("transaction", '"memo":', '"deep":' + _deep(5_000) + ',"memo":', 1),
    # The line's object is the first level: 199 more are allowed, not 200.
    "deep-just-enough": _in_line("transaction", '"memo":', f'"deep":{_deep(199)},"memo":', 1),
    "deep-one-more": _in_line("transaction", '"memo":', f'"deep":{_deep(200)},"memo":', 1),
    "deep-line": lambda lines: [*lines[:3], _deep(100_000), *lines[3:]],
    "deep-then-nan": _in_line("transaction", '"memo":', '"deep":' + "[" * 300 + "NaN", 1),
    "nan-then-deep": _in_line("transaction", '"memo":', '"deep":[NaN,' + "[" * 300, 1),
    "block-no-height": _line_edit("block", lambda b: b.pop("height"), 1),
    "block-no-last-sequence": _line_edit("block", lambda b: b.pop("last_sequence"), 1),
    "block-height-string": _line_edit("block", lambda b: b.update(height="2"), 1),
    "block-only-type": _line_edit("block", lambda b: [b.pop(k) for k in list(b) if k != "type"]),
    "line-an-array": lambda lines: [*lines[:2], "[1, 2]", *lines[3:]],
    "line-an-empty-object": _line_edit("transaction", lambda t: t.clear(), 1),
    "postings-a-string": _line_edit("transaction", lambda t: t.update(postings="legs"), 1),
    "postings-null": _line_edit("transaction", lambda t: t.update(postings=None), 1),
    "postings-not-objects": _line_edit("transaction", lambda t: t.update(postings=[1, None])),
    "sequence-a-string": _line_edit("transaction", lambda t: t.update(sequence="2"), 1),
    "redacted-hash-not-hex": _line_edit("redacted", lambda r: r.update(hash="z" * 64)),
    "manifest-keys-odd": _line_edit("manifest", lambda m: m.update(signing_keys=[{"x": 1}])),
}


# Values the ledger never writes but a file may hold, all with an exact canonical form
# in Python: the page must hash them to the same bytes (floats as Python's repr,
# integers beyond 2**53 exactly, escapes, keys in code point order).
ODD_METADATA: list[Any] = [
    {"note": 'Réf. “grant” — 😀 \\ "q" \t\n\r\b\f \x00\x1f\x7f \u0085\u2028\u2029 end'},
    {"floats": [1.5e-7, 1e22, 100.0, 0.1, -0.0, 1e16, 123456789012345.6, 5e-324, 0.0001]},
    {"big": [2**64, -(2**63), 2**53 + 1, 0, -1]},
    {"\U0001f600": 1, "\uffff": 2, "a": {"z": [], "b": {}}, "\u00e9": None, "B": True},
]


def _synthetic(count: int, per_block: int, keys: list[Signer], *, text: str = "") -> list[str]:
    """A whole export made here, not by the service: ``count`` transactions sealed in
    blocks of ``per_block``, the key changing (endorsed) at each of ``keys``' turns;
    ``text`` in every memo. Lines alternate between raw UTF-8 and ASCII escapes."""
    from voucherledger.ledger.canonical import (
        GENESIS_HASH,
        block_object,
        chain_hash,
        transaction_object,
    )
    from voucherledger.ledger.export import MANIFEST_FORMAT
    from voucherledger.ledger.keys import endorsement_message

    blocks = (count + per_block - 1) // per_block
    turn = (blocks + len(keys) - 1) // len(keys)
    history: list[dict[str, Any]] = []
    for position, signer in enumerate(keys, start=1):
        first = 1 + (position - 1) * turn
        endorsement = None
        if position > 1:
            endorsement = keys[position - 2].sign(
                endorsement_message(
                    public_key=signer.public_key_hex,
                    previous_public_key=keys[position - 2].public_key_hex,
                    first_height=first,
                )
            )
        history.append(
            {
                "position": position,
                "public_key": signer.public_key_hex,
                "first_height": first,
                "recorded_at": "2027-01-01T00:00:00.000000Z",
                "endorsement": endorsement,
                "unendorsed_reason": None,
            }
        )
    out: list[str] = []
    prev, height, first_sequence, credits = GENESIS_HASH, 0, 1, 0
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
            memo=text or None,
            metadata=ODD_METADATA[sequence % len(ODD_METADATA)],
            postings=[
                {"account": "funder:f:EUR", "amount": -sequence, "currency": "EUR"},
                {"account": "programme:p:unissued", "amount": sequence, "currency": "EUR"},
            ],
        )
        credits += sequence
        digest = chain_hash(prev, canonical_json(record))
        line = {"type": "transaction", **record, "prev_hash": prev, "hash": digest}
        out.append(json_line(json.dumps(line, ensure_ascii=sequence % 2 == 0)))
        prev = digest
        if sequence % per_block == 0 or sequence == count:
            height += 1
            signer = keys[(height - 1) // turn]
            block = block_object(
                height=height,
                first_sequence=first_sequence,
                last_sequence=sequence,
                prev_hash=block_prev,
                hash=prev,
                sealed_at="2027-01-01T00:00:01.000000Z",
            )
            block_prev = prev
            first_sequence = sequence + 1
            signed = {**block, "signature": signer.sign(canonical_json(block))}
            out.append(json.dumps({"type": "block", **signed, "public_key": signer.public_key_hex}))
    manifest: dict[str, Any] = {
        "type": "manifest",
        "format": MANIFEST_FORMAT,
        "programme_ids": None,
        "since": None,
        "until": None,
        "transactions": count,
        "credits_by_currency": {"EUR": credits},
        "last_sequence": count,
        "block_height": height,
        "head_hash": prev,
        "exported_at": "2027-01-02T00:00:00.000000Z",
        "public_key": keys[-1].public_key_hex,
        "signing_keys": history,
    }
    manifest["signature"] = keys[-1].sign(canonical_json(manifest))
    out.append(json.dumps(manifest))
    return out


def _write(path: Path, lines: list[str], ending: str = "\n") -> Path:
    """The lines as UTF-8; a lone surrogate U+DC80-U+DCFF is the byte it stands for."""
    path.write_bytes("".join(line + ending for line in lines).encode("utf-8", "surrogateescape"))
    return path


def _python(path: Path, keys: list[str]) -> FileResult:
    """What ``voucherledger verify FILE [--public-key KEY]`` decides: its own function,
    which opens the file as the command does."""
    return verify_file(path, public_keys=keys or None)


def _page(page: Any, path: Path, key: str | None = None, timeout: int = 15_000) -> dict[str, Any]:
    """The page's verdict on the file: data-verdict, data-line and what it shows."""
    result = page.locator("#verify-result")
    before = result.get_attribute("data-run") or "0"
    if key is not None:
        page.locator("#f-public_key").fill(key)
    page.locator("#f-export").set_input_files(str(path))
    page.locator("#verify-button").click()
    page.wait_for_function(
        "(before) => (document.getElementById('verify-result').dataset.run || '0') !== before",
        arg=before,
        timeout=timeout,
    )
    line = result.get_attribute("data-line")
    return {
        "verdict": result.get_attribute("data-verdict"),
        "line": int(line) if line else None,
        "reason": result.locator("[data-out='reason']").inner_text(),
        "transactions": result.locator("[data-out='transactions']").inner_text(),
    }


def _same(
    page: Any, path: Path, keys: list[str], name: str, timeout: int = 15_000
) -> dict[str, Any]:
    python = _python(path, keys)
    shown = _page(page, path, " ".join(keys), timeout)
    assert shown["verdict"] == ("valid" if python.ok else "invalid"), (name, python, shown)
    assert shown["line"] == python.line, (name, python, shown)
    assert shown["reason"] == (python.error or ""), (name, python, shown)
    if python.ok:
        assert shown["transactions"] == str(python.transactions), (name, shown)
        if page.locator("html").get_attribute("lang") == "en":
            # The keys and their blocks, as the offline command lists them.
            listed = page.locator("[data-out='keys']").inner_text()
            for signed in python.keys:
                if signed.first_height is not None:
                    blocks = f"signed blocks {signed.first_height} to {signed.last_height}"
                    assert f"{signed.public_key} {blocks}" in listed, (name, listed)
    return shown


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_page_and_the_offline_verifier_agree_on_every_file(
    settings: Settings, tmp_path: Path
) -> None:
    with live_app(settings) as live, chromium() as browser:
        funds, _ = _story(live)
        lines = _export(live, funds)
        kinds = _types(lines)
        assert kinds.count("block") >= 3, kinds
        assert "redacted" in kinds, kinds
        checkpoint = live.api("GET", "/v1/audit/checkpoint", funds)
        key = checkpoint["public_key"]
        with browsing(browser, base_url=live.url, viewport=DESKTOP, locale="en-GB") as watched:
            page = watched.page
            sign_in(page, EMAIL)
            page.goto("/console/verify")
            assert page.get_by_role("heading", level=1).inner_text() == "Verify an export file"
            # The key offered is the checkpoint's; the file is never sent.
            assert page.locator("#f-public_key").input_value() == key
            posted: list[str] = []
            page.on("request", lambda r: posted.append(r.url) if r.method != "GET" else None)
            assert_accessible(page)

            verdicts: dict[str, tuple[str, int | None]] = {}
            for name, edit in EDITS.items():
                path = _write(tmp_path / f"{name}.jsonl", edit(lines))
                shown = _same(page, path, [key], name)
                verdicts[name] = (shown["verdict"], shown["line"])
                if name == "good":
                    assert_accessible(page)
                    screenshot(page, "verify")
            # Every tampered copy is refused, at the line the edit is on or after.
            assert verdicts.pop("good") == ("valid", None)
            assert verdicts.pop("blank-lines") == ("valid", None)
            assert all(v == "invalid" for v, _ in verdicts.values()), verdicts
            assert verdicts["amount-digit"][1] == _where(lines, "transaction", 1) + 1
            assert verdicts["amount-as-float"][1] == _where(lines, "transaction", 2) + 1
            assert verdicts["manifest-missing"][1] == len(lines) - 1
            assert verdicts["block-key"][1] == _where(lines, "block", 1) + 1

            # CRLF line ends: the same lines to both.
            crlf = _write(tmp_path / "crlf.jsonl", lines, "\r\n")
            assert _same(page, crlf, [key], "crlf")["verdict"] == "valid"
            # No trusted key: the file's own keys only; a block's key swapped still fails
            # (its signature no longer verifies), as offline.
            good = tmp_path / "good.jsonl"
            assert _same(page, good, [], "good, no key")["verdict"] == "valid"
            assert "the file was checked against the keys it carries" in page.inner_text(
                "#verify-result"
            )
            shown = _same(page, tmp_path / "block-key.jsonl", [], "block key, no key")
            assert "invalid signature" in shown["reason"]
            # A block signed again with one's own key: refused at the manifest, whose
            # key history does not hold that key.
            shown = _same(page, tmp_path / "block-resigned.jsonl", [], "re-signed, no key")
            assert shown["line"] == len(lines)
            assert "not in the key history" in shown["reason"]
            # A key that is not the service's: the first block already fails.
            shown = _same(page, good, [OTHER_KEY], "other key")
            assert shown["line"] == _where(lines, "block") + 1

            # A file made here: odd values, two keys (an endorsed rotation), and big.
            keys = [OTHER, Signer.from_seed(b"\x55" * 32)]
            made = _synthetic(40, 7, keys, text="Réf. — 😀 \u2028 \\")
            odd = _write(tmp_path / "odd.jsonl", made)
            assert _same(page, odd, [], "odd values")["verdict"] == "valid"
            both = [k.public_key_hex for k in keys]
            assert _same(page, odd, both, "odd values, both keys")["verdict"] == "valid"
            assert _same(page, odd, both[:1], "odd values, old key")["verdict"] == "invalid"
            # The same float written otherwise hashes the same; an int for a float does not.
            index = 0  # sequence 1: ODD_METADATA[1], the floats
            assert '"floats"' in made[index]
            for old, new, same in (
                ("100.0", "100", False),
                ("-0.0", "-0", False),
                ("1e+22", "1e22", True),
                ("1e+16", "10000000000000000.0", True),
                ("0.1,", "0.10000000000000001,", True),
            ):
                edited = _write(tmp_path / "odd-float.jsonl", _replace(made, index, old, new))
                shown = _same(page, edited, [], f"odd float {old} -> {new}")
                assert shown["line"] == (None if same else index + 1)
            unendorsed = _replace(made, len(made) - 1, '"endorsement": "', '"endorsement": "00')
            _same(page, _write(tmp_path / "odd-key.jsonl", unendorsed), [], "bad endorsement")

            big = _write(tmp_path / "big.jsonl", _synthetic(30_000, 500, [OTHER], text="x" * 300))
            assert big.stat().st_size > 10_000_000
            shown = _same(page, big, [OTHER_KEY], "big", 180_000)
            assert page.locator("#verify-progress-text").inner_text() == "100% read"
            lines_big = big.read_text(encoding="utf-8").split("\n")[:-1]
            late = _replace(lines_big, len(lines_big) - 5, '"amount": -', '"amount": -1')
            _same(
                page,
                _write(tmp_path / "big-late.jsonl", late),
                [OTHER_KEY],
                "big, late edit",
                180_000,
            )
            assert not posted, posted
            watched.assert_clean()

        with browsing(browser, base_url=live.url, viewport=PHONE, locale="fr-FR") as watched:
            page = watched.page
            sign_in(page, EMAIL)
            page.goto("/console/verify")
            assert page.locator("html").get_attribute("lang") == "fr"
            _same(page, tmp_path / "good.jsonl", [key], "good, fr")
            assert_accessible(page)
            _same(page, tmp_path / "lines-swapped.jsonl", [key], "swapped, fr")
            assert_accessible(page)
            watched.assert_clean()
