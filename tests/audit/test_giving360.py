"""The 360Giving export of a full story is a valid package (checked offline against
the official schemas), one grant per voucher, with exact amounts: awarded = face
value, disbursed = the net of the settled claims on the voucher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.factories.exports import (
    Story,
    giving360_validator,
    story_on,
)
from tests.factories.programmes import session_factory
from voucherledger.audit import giving360
from voucherledger.audit.giving360 import Major, dumps, giving360_export
from voucherledger.audit.standards import ExportTally

PREFIX = "examplefund"
BULK = 30


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return giving360_validator()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    with story_on(
        str(request.param), request, tmp_path_factory.mktemp("giving360"), bulk=BULK
    ) as told:
        yield told


def export(
    story: Story,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tally: ExportTally | None = None,
) -> bytes:
    with session_factory(story.client)() as session:
        return b"".join(
            giving360_export(
                session,
                [story.main, story.side],
                prefix=PREFIX,
                since=since,
                until=until,
                tally=tally,
            )
        )


def grants(raw: bytes, validator: Draft202012Validator) -> dict[str, dict[str, Any]]:
    package = json.loads(raw, parse_float=Decimal)
    errors = sorted(validator.iter_errors(package), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    by_voucher = {grant["id"].removeprefix(f"360G-{PREFIX}-"): grant for grant in package["grants"]}
    assert len(by_voucher) == len(package["grants"])
    return by_voucher


def major(amount: int, exponent: int = 2) -> Decimal:
    return Decimal(amount).scaleb(-exponent)


def settled_net_per_voucher(story: Story) -> dict[str, dict[str, int]]:
    """voucher id -> settlement id -> net amount, from the API's settlements and claims."""
    out: dict[str, dict[str, int]] = {}
    for settlement in story.settlements.values():
        for redemption_id in settlement["redemption_ids"]:
            response = story.client.get(
                f"/v1/redemptions/{redemption_id}", headers=story.funder.headers
            )
            assert response.status_code == 200, response.text
            claim = response.json()
            net = claim["amount"] - claim["refunded_amount"]
            per = out.setdefault(claim["voucher_id"], {})
            per[settlement["id"]] = per.get(settlement["id"], 0) + net
    return out


# --- the whole export -------------------------------------------------------------------


def test_the_export_is_a_valid_package_with_one_grant_per_voucher(
    story: Story, validator: Draft202012Validator
) -> None:
    found = grants(export(story), validator)
    assert set(found) == set(story.vouchers)
    assert len(found) == 6 + 1 + BULK


def test_amounts_awarded_are_the_exact_face_values(
    story: Story, validator: Draft202012Validator
) -> None:
    raw = export(story)
    found = grants(raw, validator)
    for voucher_id, voucher in story.vouchers.items():
        exponent = 0 if voucher["currency"] == "JPY" else 2
        grant = found[voucher_id]
        assert grant["currency"] == voucher["currency"]
        assert grant["amountAwarded"] == major(voucher["amount"], exponent)
    # Digit for digit: two decimals for EUR, none for JPY; never a float's rendering.
    assert b'"amountAwarded":1000.00,' in raw
    assert b'"amountAwarded":2500,' in raw
    assert b"e+" not in raw.lower()


def test_disbursements_are_the_net_settled_claims(
    story: Story, validator: Draft202012Validator
) -> None:
    found = grants(export(story), validator)
    expected = settled_net_per_voucher(story)
    assert len(expected) == 3  # v1 twice, v2 and v4 once
    assert any(len(per) == 2 for per in expected.values())
    for voucher_id, grant in found.items():
        exponent = 0 if grant["currency"] == "JPY" else 2
        per_settlement = expected.get(voucher_id, {})
        assert grant["amountDisbursed"] == major(sum(per_settlement.values()), exponent)
        paid = grant.get("disbursementTransaction", [])
        assert {t["id"]: t["value"] for t in paid} == {
            f"{sid}-{voucher_id}": major(net, exponent) for sid, net in per_settlement.items()
        }
        for transaction in paid:
            settlement = story.settlements[transaction["id"].removesuffix(f"-{voucher_id}")]
            assert transaction["recipient"] == f"360G-{PREFIX}-{settlement['supplier_id']}"
            assert transaction["provider"] == f"360G-{PREFIX}-{story.funder.id}"
            assert transaction["currency"] == "EUR"


def test_parties_programme_and_dates(story: Story, validator: Draft202012Validator) -> None:
    found = grants(export(story), validator)
    voucher_id = story.voucher_ids(story.main)[0]
    voucher, grant = story.vouchers[voucher_id], found[voucher_id]
    group = story.groups["g1"]
    assert voucher["group_id"] == group.id
    assert grant["recipientOrganization"] == [
        {
            "id": f"360G-{PREFIX}-{group.id}",
            "name": "Kumasi Women's Association",
            "addressCountry": "United Kingdom",
        }
    ]
    assert grant["beneficiaryLocation"] == [{"countryCode": "GH", "name": "Ghana"}]
    assert grant["fundingOrganization"] == [
        {"id": f"360G-{PREFIX}-{story.funder.id}", "name": "Fondation Diaspora & Développement"}
    ]
    assert grant["grantProgramme"] == [{"code": story.main, "title": "Diaspora capacity 2026"}]
    issued = datetime.fromisoformat(voucher["created_at"])
    expires = datetime.fromisoformat(voucher["expires_at"])
    assert datetime.fromisoformat(grant["awardDate"]) == issued
    (planned,) = grant["plannedDates"]
    assert datetime.fromisoformat(planned["startDate"]) == issued
    assert datetime.fromisoformat(planned["endDate"]) == expires
    assert voucher["code"] not in json.dumps(grant, default=str)  # a bearer secret


def test_the_tally_matches_the_package(story: Story, validator: Draft202012Validator) -> None:
    tally = ExportTally("360giving")
    found = grants(export(story, tally=tally), validator)
    assert tally.complete
    assert tally.programmes == 2
    assert tally.rows == len(found)
    awarded: dict[str, int] = {}
    for voucher in story.vouchers.values():
        awarded[voucher["currency"]] = awarded.get(voucher["currency"], 0) + voucher["amount"]
    disbursed = sum(s["amount"] for s in story.settlements.values())
    assert tally.totals == {
        "EUR": {"awarded": awarded["EUR"], "disbursed": disbursed},
        "JPY": {"awarded": awarded["JPY"], "disbursed": 0},
    }
    assert tally.as_dict()["totals"]["JPY"]["awarded"]["major"] == str(awarded["JPY"])


def test_the_period_selects_grants_by_award_and_disbursements_until_its_end(
    story: Story, validator: Draft202012Validator
) -> None:
    first_settled = min(datetime.fromisoformat(s["created_at"]) for s in story.settlements.values())
    # Before any settlement: every main voucher but the side's, nothing disbursed.
    early = grants(export(story, until=first_settled), validator)
    assert set(early) == set(story.voucher_ids(story.main))
    assert all(g["amountDisbursed"] == 0 for g in early.values())
    assert all("disbursementTransaction" not in g for g in early.values())
    # After them: only the side programme's vouchers (issued late in the story).
    late = grants(export(story, since=first_settled), validator)
    assert set(late) == set(story.voucher_ids(story.side))


def test_chunked_reading_of_vouchers_misses_none(
    story: Story, validator: Draft202012Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(giving360, "_CHUNK_VOUCHERS", 7)
    monkeypatch.setattr(giving360, "_CHUNK_BYTES", 1024)
    with session_factory(story.client)() as session:
        chunks = list(
            giving360_export(session, [story.side], prefix=PREFIX, since=None, until=None)
        )
    assert len(chunks) > 3
    found = grants(b"".join(chunks), validator)
    assert set(found) == set(story.voucher_ids(story.side))


# --- arguments and the writer's JSON -----------------------------------------------------


def test_unknown_programmes_and_an_empty_prefix_are_refused(story: Story) -> None:
    with session_factory(story.client)() as session:
        with pytest.raises(LookupError, match="prg_nope"):
            giving360_export(session, ["prg_nope"], prefix=PREFIX, since=None, until=None)
        with pytest.raises(ValueError, match="prefix"):
            giving360_export(session, [story.main], prefix="", since=None, until=None)


def test_dumps_writes_major_amounts_as_exact_numbers() -> None:
    text = dumps({"a": Major("12345678901234.99"), "b": ["é", None, True, 3], "c": Major("-0.01")})
    assert text == '{"a":12345678901234.99,"b":["é",null,true,3],"c":-0.01}'
    assert json.loads(text, parse_float=Decimal)["a"] == Decimal("12345678901234.99")
