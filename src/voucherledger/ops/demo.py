"""``voucherledger demo``: a small, realistic voucher scheme in a fresh database.

Everything goes through the service functions the API's routes call, as the party
who would make the request, so the demo's journal is what the same story told over
HTTP would have written. It all happens in one database transaction: the demo is
written completely or not at all.

The story: a development agency funds a capacity-voucher programme run by a
diaspora umbrella body, with an auditor named on it. A dozen diaspora and migrant
groups of different kinds and origins (some led by women) get vouchers, one at a
time and in a batch; four suppliers are accredited; suppliers claim, groups confirm
or reject, a supplier cancels a mistaken claim and refunds part of another; the
agency pays one supplier (its programme officer proposes the payout, its finance
officer approves it: the programme wants two people); groups say what the
training changed; one voucher is revoked.

People of every party sign in to the web console: an owner of the admin account,
of the agency (with its programme officer and its finance officer, who approves
payouts and so holds a second factor), of the umbrella body, of the audit office, of
the first group and of the first supplier. Their password is made afresh for each
run (128 random bits) and printed once with the keys, as is the finance officer's
TOTP secret, never fixed ones: ``--force`` runs the demo on a database that is not
empty, perhaps one others reach, where a password written in the docs would let
anyone in.
"""

from __future__ import annotations

import base64
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from voucherledger import chart, ledger
from voucherledger.accounts import repository as accounts_repo
from voucherledger.accounts import service as accounts
from voucherledger.accounts.models import Member
from voucherledger.accounts.schemas import (
    AccountCreate,
    AccountOut,
    KeyCreated,
    SupplierProfileUpdate,
)
from voucherledger.core.auth import MemberRole, Principal
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.ids import new_id
from voucherledger.people.passwords import Passwords, check_password
from voucherledger.programmes import service as programmes
from voucherledger.programmes.schemas import AccreditationCreate, DepositCreate, ProgrammeCreate
from voucherledger.redemptions import repository as redemptions_repo
from voucherledger.redemptions import service as redemptions
from voucherledger.redemptions.limiter import FailureLimiter
from voucherledger.redemptions.schemas import FeedbackCreate, RedemptionCreate, RedemptionOut
from voucherledger.settlements import service as settlements
from voucherledger.settlements.schemas import SettlementCreate
from voucherledger.vouchers import service as vouchers
from voucherledger.vouchers.schemas import VoucherCreate, VoucherOut

CURRENCY = "EUR"

# name, group_type, origin, residence, women_led
GROUPS: list[tuple[str, str, str, str, bool]] = [
    ("Kumasi Hometown Association", "hometown_association", "GH", "NL", True),
    ("Somali Women's Development Circle", "womens_group", "SO", "NL", True),
    ("Eritrean Community Saturday School", "supplementary_school", "ER", "NL", False),
    ("Surinamese Professionals Network", "professional_association", "SR", "NL", False),
    ("Rif Youth Forum Rotterdam", "youth_group", "MA", "NL", False),
    ("Ghanaian Nurses Alumni Association", "alumni_association", "GH", "BE", True),
    ("Anatolia Diaspora Investment Club", "investment_group", "TR", "DE", False),
    ("Morabeza Cape Verdean Arts Collective", "arts_cultural_group", "CV", "NL", True),
    ("Afghan Refugee Welfare Association", "welfare_refugee_group", "AF", "NL", False),
    ("Bayanihan Filipino Migrant Fellowship", "ethnic_association", "PH", "NL", True),
    ("Colombia Solidaria Development NGO", "development_ngo", "CO", "BE", False),
    ("Naija Women in Tech Online", "virtual_organisation", "NG", "DE", True),
]

# name, country, service categories offered, the IBAN a payout goes to (valid
# checksums, no real account's)
SUPPLIERS: list[tuple[str, str, list[str], str]] = [
    (
        "Civic Skills Academy",
        "NL",
        ["leadership", "governance", "management"],
        "NL91ABNA0417164300",
    ),
    (
        "Community Finance Trust",
        "NL",
        ["financial_management", "financial_literacy", "fundraising"],
        "NL39RABO0300065264",
    ),
    (
        "Bridge Enterprise Lab",
        "BE",
        ["enterprise_development", "export_markets", "marketing"],
        "BE71096123456769",
    ),
    ("Open Door Digital", "NL", ["digital_skills", "monitoring_evaluation"], "NL20INGB0001234567"),
]

PROGRAMME_CATEGORIES = [
    "leadership",
    "governance",
    "management",
    "fundraising",
    "financial_management",
    "financial_literacy",
    "enterprise_development",
    "marketing",
    "digital_skills",
    "monitoring_evaluation",
]


class DatabaseNotEmpty(Exception):
    """The database already holds accounts: the demo would mix with real data."""

    def __init__(self, accounts: int) -> None:
        super().__init__(f"the database already has {accounts} account(s)")
        self.accounts = accounts


@dataclass(frozen=True, slots=True)
class PartyKey:
    """A party of the demo, with the key printed for it and what to try with it."""

    role: str
    name: str
    account_id: str
    key: str
    commands: list[str]

    @property
    def variable(self) -> str:
        return f"{self.role.upper()}_KEY"


@dataclass(frozen=True, slots=True)
class SignIn:
    """A person of the demo who signs in to the console."""

    kind: str
    role: MemberRole
    account: str
    name: str
    email: str
    member_id: str
    account_id: str
    totp_secret: str | None = None

    @property
    def principal(self) -> Principal:
        """The person as the principal it acts as in the story."""
        return Principal(
            account_id=self.account_id,
            kind=self.kind,
            key_id=None,
            member_id=self.member_id,
            member_role=self.role,
        )


# The account's kind, the role, the person, the address; the first account of its
# kind. The finance officer approves payouts, which takes a confirmed second factor.
PEOPLE: list[tuple[str, MemberRole, str, str]] = [
    ("admin", "owner", "Sam Jansen", "sam.jansen@scheme-operator.example.org"),
    ("funder", "owner", "Nadia Haddad", "nadia.haddad@agency.example.org"),
    ("funder", "operator", "Pieter Bakker", "pieter.bakker@agency.example.org"),
    ("funder", "approver", "Fatima El Amrani", "fatima.elamrani@agency.example.org"),
    ("manager", "owner", "Kofi Mensah", "kofi.mensah@diaspora-forum.example.org"),
    ("auditor", "owner", "Ingrid Visser", "ingrid.visser@audit-office.example.org"),
    ("group", "owner", "Ama Owusu", "ama.owusu@kumasi-hometown.example.org"),
    ("supplier", "owner", "Lotte de Vries", "lotte.devries@civic-skills.example.org"),
]


def new_password() -> str:
    """The demo people's password: 128 random bits, 22 characters."""
    password = secrets.token_urlsafe(16)
    check_password(password)  # long and random: never a common one
    return password


@dataclass(slots=True)
class Demo:
    """What the demo wrote, for :func:`render` to print."""

    programme_id: str
    programme_name: str
    accounts: int = 0
    vouchers: int = 0
    claims: Counter[str] = field(default_factory=Counter)
    parties: list[PartyKey] = field(default_factory=list)
    sign_ins: list[SignIn] = field(default_factory=list)
    password: str = ""


def account_count(session: Session) -> int:
    return accounts_repo.count(session)


def _principal(account: AccountOut, key: KeyCreated | None = None) -> Principal:
    # Principal.key_id names the key a request came with, and is who did it (the
    # rows' created_by, the journal's metadata.created_by). Parties the demo prints no
    # key for act as "system": the demo wrote their part of the story.
    return Principal(
        account_id=account.id, kind=account.kind, key_id=key.id if key else ledger.SYSTEM
    )


def _account(session: Session, body: dict[str, Any]) -> AccountOut:
    return accounts.create(session, AccountCreate.model_validate(body))


class _Story:
    """The scheme, told step by step inside one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.limiter = FailureLimiter()
        self.year = utcnow().year

    def issue(
        self, issuer: Principal, programme_id: str, items: list[dict[str, Any]], *, batch: bool
    ) -> list[VoucherOut]:
        return vouchers.issue(
            self.session,
            issuer,
            programme_id,
            [VoucherCreate.model_validate(item) for item in items],
            ledger_key=None,
            batch=batch,
        )

    def claim(
        self,
        supplier: Principal,
        voucher: VoucherOut,
        amount: int,
        category: str,
        description: str,
        evidence: list[dict[str, str]],
    ) -> RedemptionOut:
        body = RedemptionCreate.model_validate(
            {
                "voucher_code": voucher.code,
                "amount": amount,
                "service_category": category,
                "description": description,
                "evidence": evidence,
            }
        )
        return redemptions.claim(
            self.session, supplier, body, limiter=self.limiter, ledger_key=None
        )

    def feedback(
        self, group: Principal, claim: RedemptionOut, rating: int, outcome: str, kind: str
    ) -> None:
        redemptions.feedback(
            self.session,
            group,
            claim.id,
            FeedbackCreate.model_validate(
                {"rating": rating, "outcome": outcome, "outcome_kind": kind}
            ),
        )


def populate(factory: sessionmaker[Session], passwords: Passwords, *, force: bool = False) -> Demo:
    """Write the demo scheme; raises :class:`DatabaseNotEmpty` (writing nothing) if
    the database has accounts already, unless ``force``. ``passwords`` hashes the
    password of the people who sign in (with the service's parameters).

    The body is the story's table of contents: one function per chapter, in order."""
    password = new_password()
    with transaction(factory) as session:
        existing = account_count(session)
        if existing and not force:
            raise DatabaseNotEmpty(existing)
        story = _Story(session)
        cast = _accounts_and_keys(story)
        people = _people_who_sign_in(story, cast, passwords.hash(password))
        demo = _programme_and_funding(story, cast)
        prg = demo.programme_id
        _accreditation(story, cast, prg)
        voucher = _issuance(story, cast, prg)
        delivered = _claims_and_confirmation(story, cast, voucher)
        _claims_refused(story, cast, voucher)
        _claims_pending(story, cast, voucher)
        _feedback(story, cast, delivered)
        _settlement(story, people, cast, prg)
        _revocation(story, cast, voucher)
        demo.vouchers = len(voucher)
        demo.claims = _claims_by_status(session, prg)
        demo.parties = _what_to_try(cast, prg)
        demo.sign_ins = people
        demo.password = password
        demo.accounts = account_count(session) - existing
        return demo


@dataclass(frozen=True, slots=True)
class _Cast:
    """The parties of the story: their accounts, the keys printed for some of them,
    and each as the principal it acts as. ``groups[i]`` gets ``voucher[i]``."""

    admin_key: KeyCreated
    funder: AccountOut
    manager: AccountOut
    auditor: AccountOut
    groups: list[AccountOut]
    suppliers: list[AccountOut]
    keys: dict[str, KeyCreated]
    as_funder: Principal
    as_manager: Principal
    as_group: list[Principal]
    as_supplier: list[Principal]


@dataclass(frozen=True, slots=True)
class _Delivered:
    """The claims whose service was delivered and confirmed, which feedback is about."""

    board: RedemptionOut
    books: RedemptionOut
    export: RedemptionOut
    governance: RedemptionOut


def _accounts_and_keys(story: _Story) -> _Cast:
    """The operator, the agency, its umbrella body, the auditor, the groups and the
    suppliers; a key for one party of each kind."""
    session = story.session
    admin_key = accounts.create_admin(session, "Scheme operator")
    funder = _account(
        session,
        {"kind": "funder", "name": "Agency for Diaspora Development Cooperation", "country": "NL"},
    )
    manager = _account(
        session, {"kind": "manager", "name": "Diaspora Forum Netherlands", "country": "NL"}
    )
    auditor = _account(
        session, {"kind": "auditor", "name": "Public Funds Audit Office", "country": "NL"}
    )
    groups = [
        _account(
            session,
            {
                "kind": "group",
                "name": name,
                "group": {
                    "group_type": group_type,
                    "origin_country": origin,
                    "residence_country": residence,
                    "women_led": women_led,
                },
            },
        )
        for name, group_type, origin, residence, women_led in GROUPS
    ]
    suppliers = [
        _account(
            session,
            {
                "kind": "supplier",
                "name": name,
                "country": country,
                "supplier": {"service_categories": categories},
            },
        )
        for name, country, categories, _ in SUPPLIERS
    ]
    for supplier, (*_, iban) in zip(suppliers, SUPPLIERS, strict=True):
        accounts.update_supplier_profile(
            session,
            _principal(supplier),
            supplier.id,
            SupplierProfileUpdate.model_validate({"payout_iban": iban}),
        )
    keys = {
        "funder": accounts.create_key(session, funder.id),
        "manager": accounts.create_key(session, manager.id),
        "auditor": accounts.create_key(session, auditor.id),
        "group": accounts.create_key(session, groups[0].id),
        "supplier": accounts.create_key(session, suppliers[0].id),
    }
    return _Cast(
        admin_key=admin_key,
        funder=funder,
        manager=manager,
        auditor=auditor,
        groups=groups,
        suppliers=suppliers,
        keys=keys,
        as_funder=_principal(funder, keys["funder"]),
        as_manager=_principal(manager, keys["manager"]),
        as_group=[_principal(g, keys["group"] if i == 0 else None) for i, g in enumerate(groups)],
        as_supplier=[
            _principal(s, keys["supplier"] if i == 0 else None) for i, s in enumerate(suppliers)
        ],
    )


def _programme_and_funding(story: _Story, cast: _Cast) -> Demo:
    """The agency sets up the programme, its rules and its parties, and pays in two
    tranches."""
    session, year = story.session, story.year
    name = f"Diaspora Capacity Vouchers {year}"
    programme = programmes.create(
        session,
        cast.as_funder,
        ProgrammeCreate.model_validate(
            {
                "name": name,
                "currency": CURRENCY,
                "service_categories": PROGRAMME_CATEGORIES,
                "rules": {
                    "women_led_reserve_pct": 30,
                    "max_voucher_amount": 250_000,
                    "max_total_per_group": 400_000,
                    "voucher_validity_days": 365,
                    "hold_days": 14,
                    "settlement_approval": "two_person",
                },
                "manager_ids": [cast.manager.id],
                "auditor_ids": [cast.auditor.id],
            }
        ),
    )
    for amount, reference in [
        (3_000_000, f"SEPA transfer {year}-01, first tranche"),
        (2_000_000, f"SEPA transfer {year}-04, second tranche"),
    ]:
        programmes.deposit(
            session,
            cast.as_funder,
            programme.id,
            DepositCreate.model_validate({"amount": amount, "reference": reference}),
            None,
        )
    return Demo(programme_id=programme.id, programme_name=name)


def _accreditation(story: _Story, cast: _Cast, prg: str) -> None:
    """The funder accredits two suppliers; its umbrella body the other two."""
    suppliers = cast.suppliers
    for accreditor, supplier, categories in [
        (cast.as_funder, suppliers[0], ["leadership", "governance", "management"]),
        (
            cast.as_funder,
            suppliers[1],
            ["financial_management", "financial_literacy", "fundraising"],
        ),
        (cast.as_manager, suppliers[2], ["enterprise_development", "marketing"]),
        (cast.as_manager, suppliers[3], ["digital_skills", "monitoring_evaluation"]),
    ]:
        programmes.accredit(
            story.session,
            accreditor,
            prg,
            AccreditationCreate.model_validate(
                {"supplier_id": supplier.id, "service_categories": categories}
            ),
        )


def _issuance(story: _Story, cast: _Cast, prg: str) -> list[VoucherOut]:
    """Two single vouchers, then a batch for the other ten groups; ``voucher[i]``
    belongs to ``groups[i]``."""
    groups = cast.groups
    singles = [
        *story.issue(
            cast.as_funder, prg, [{"group_id": groups[0].id, "amount": 150_000}], batch=False
        ),
        *story.issue(
            cast.as_manager,
            prg,
            [
                {
                    "group_id": groups[1].id,
                    "amount": 200_000,
                    "service_categories": ["financial_management", "fundraising", "leadership"],
                }
            ],
            batch=False,
        ),
    ]
    batch_amounts = [120_000, 180_000, 100_000, 150_000, 250_000, 90_000, 120_000, 80_000]
    batch_amounts += [160_000, 200_000]
    batch = story.issue(
        cast.as_manager,
        prg,
        [
            {"group_id": group.id, "amount": amount}
            for group, amount in zip(groups[2:], batch_amounts, strict=True)
        ],
        batch=True,
    )
    return [*singles, *batch]


def _claims_and_confirmation(story: _Story, cast: _Cast, voucher: list[VoucherOut]) -> _Delivered:
    """Captured claims: claimed by a supplier, confirmed by the group; one of them
    partly refunded."""
    session, as_group = story.session, cast.as_group
    civic, finance, bridge, _ = cast.as_supplier
    board = story.claim(
        civic,
        voucher[0],
        60_000,
        "leadership",
        "Two-day board leadership course for the association's new committee",
        [{"kind": "attendance", "reference": "signed attendance list, 9 participants"}],
    )
    redemptions.confirm(session, as_group[0], board.id, None)
    books = story.claim(
        finance,
        voucher[1],
        80_000,
        "financial_management",
        "Bookkeeping and annual accounts coaching, four sessions",
        [{"kind": "invoice", "reference": "CFT-INV-0412"}],
    )
    redemptions.confirm(session, as_group[1], books.id, None)
    # One of the four sessions did not take place: the supplier refunds part of it.
    redemptions.refund(
        session, finance, books.id, 20_000, "fourth coaching session not delivered", None
    )
    export = story.claim(
        bridge,
        voucher[6],
        120_000,
        "enterprise_development",
        "Business plan clinic for members starting trade with Turkey",
        [{"kind": "certificate", "reference": "BEL completion certificates batch 7"}],
    )
    redemptions.confirm(session, as_group[6], export.id, None)
    governance = story.claim(
        civic,
        voucher[3],
        45_000,
        "governance",
        "Statutes and governance review workshop",
        [{"kind": "invoice", "reference": "CSA-2031"}],
    )
    redemptions.confirm(session, as_group[3], governance.id, None)
    return _Delivered(board=board, books=books, export=export, governance=governance)


def _claims_refused(story: _Story, cast: _Cast, voucher: list[VoucherOut]) -> None:
    """Voided claims: one rejected by its group, one cancelled by its supplier."""
    session = story.session
    _, _, bridge, digital = cast.as_supplier
    # Voided by rejection: the group says the service was not delivered.
    rejected = story.claim(
        digital,
        voucher[4],
        50_000,
        "digital_skills",
        "Website and social media workshop",
        [{"kind": "invoice", "reference": "ODD-118"}],
    )
    redemptions.reject(
        session,
        cast.as_group[4],
        rejected.id,
        "the workshop was cancelled and never rescheduled",
        None,
    )
    # Voided by cancellation: the supplier claimed against the wrong voucher.
    cancelled = story.claim(
        bridge,
        voucher[7],
        40_000,
        "marketing",
        "Marketing plan for the cultural festival",
        [{"kind": "other", "reference": "entered against the wrong voucher"}],
    )
    redemptions.cancel(session, bridge, cancelled.id, None)


def _claims_pending(story: _Story, cast: _Cast, voucher: list[VoucherOut]) -> None:
    """Claims waiting for the groups to confirm; one for the group whose owner signs
    in, so the console's tour has a claim to confirm."""
    civic, _, _, digital = cast.as_supplier
    story.claim(
        civic,
        voucher[0],
        30_000,
        "governance",
        "Follow-up session on the committee's rules of procedure",
        [{"kind": "attendance", "reference": "signed attendance list, 7 participants"}],
    )
    story.claim(
        civic,
        voucher[5],
        70_000,
        "leadership",
        "Mentoring programme for the alumni association's new chair",
        [{"kind": "attendance", "reference": "mentoring log, sessions 1-3"}],
    )
    story.claim(
        digital,
        voucher[10],
        60_000,
        "monitoring_evaluation",
        "Setting up outcome tracking for the NGO's projects",
        [{"kind": "invoice", "reference": "ODD-121"}],
    )


def _feedback(story: _Story, cast: _Cast, delivered: _Delivered) -> None:
    """Groups rate the services they confirmed, with outcomes of both kinds."""
    as_group = cast.as_group
    story.feedback(
        as_group[0],
        delivered.board,
        5,
        "The committee now meets monthly and keeps minutes",
        "process",
    )
    story.feedback(
        as_group[1],
        delivered.books,
        4,
        "First audited annual accounts filed with the registry",
        "product",
    )
    story.feedback(
        as_group[6],
        delivered.export,
        3,
        "A business plan, though too generic for our sector",
        "product",
    )
    story.feedback(
        as_group[3],
        delivered.governance,
        4,
        "Updated statutes adopted by the general assembly",
        "process",
    )


def _settlement(story: _Story, people: list[SignIn], cast: _Cast, prg: str) -> None:
    """The agency pays Civic Skills Academy for its captured claims, with two people:
    its programme officer proposes the payout, its finance officer approves it."""
    officer = next(p for p in people if p.kind == "funder" and p.role == "operator")
    finance = next(p for p in people if p.kind == "funder" and p.role == "approver")
    proposed = settlements.settle(
        story.session,
        officer.principal,
        prg,
        SettlementCreate.model_validate(
            {
                "supplier_id": cast.suppliers[0].id,
                "payout_reference": f"SEPA payout {story.year}-Q2 CSA",
            }
        ),
        None,
    )
    settlements.approve(story.session, finance.principal, proposed.id, None)


def _people_who_sign_in(story: _Story, cast: _Cast, password_hash: str) -> list[SignIn]:
    """The people of :data:`PEOPLE`, active with the run's password, as if they had
    accepted an invitation; the approver with a confirmed second factor."""
    accounts_of = {
        "admin": (cast.admin_key.account_id, "Scheme operator"),
        "funder": (cast.funder.id, cast.funder.name),
        "manager": (cast.manager.id, cast.manager.name),
        "auditor": (cast.auditor.id, cast.auditor.name),
        "group": (cast.groups[0].id, cast.groups[0].name),
        "supplier": (cast.suppliers[0].id, cast.suppliers[0].name),
    }
    people = []
    for kind, role, name, email in PEOPLE:
        account_id, account = accounts_of[kind]
        secret = (
            base64.b32encode(secrets.token_bytes(20)).decode("ascii")
            if role == "approver"
            else None
        )
        member = Member(
            id=new_id("mem"),
            account_id=account_id,
            email=email,
            email_key=email.lower(),
            name=name,
            role=role,
            status="active",
            password_hash=password_hash,
            totp_secret=secret,
            totp_confirmed_at=utcnow() if secret else None,
            created_at=utcnow(),
            created_by=ledger.SYSTEM,
        )
        story.session.add(member)
        people.append(SignIn(kind, role, account, name, email, member.id, account_id, secret))
    story.session.flush()
    return people


def _revocation(story: _Story, cast: _Cast, voucher: list[VoucherOut]) -> None:
    """The umbrella body revokes a voucher."""
    vouchers.revoke(
        story.session,
        cast.as_manager,
        voucher[8].id,
        "the association merged into another group of the programme",
        None,
    )


def _claims_by_status(session: Session, prg: str) -> Counter[str]:
    return Counter(redemptions_repo.statuses(session, prg))


def _what_to_try(cast: _Cast, prg: str) -> list[PartyKey]:
    """The keys to print, and what to try with each."""
    keys, g0, s0 = cast.keys, cast.groups[0], cast.suppliers[0]
    admin_key = cast.admin_key
    paid = chart.paid(s0.id, CURRENCY)
    return [
        PartyKey(
            "admin",
            "Scheme operator",
            admin_key.account_id,
            _plain(admin_key),
            [
                "/v1/me",
                "/v1/accounts?kind=group",
                "/v1/ledger/trial-balance",
            ],
        ),
        PartyKey(
            "funder",
            cast.funder.name,
            cast.funder.id,
            _plain(keys["funder"]),
            [
                f"/v1/programmes/{prg} | jq .balances",
                f"/v1/programmes/{prg}/suppliers",
                f"/v1/settlements?programme_id={prg}",
            ],
        ),
        PartyKey(
            "manager",
            cast.manager.name,
            cast.manager.id,
            _plain(keys["manager"]),
            [
                f"/v1/redemptions?programme_id={prg}&status=pending",
                f"/v1/vouchers?programme_id={prg}&status=revoked",
                f"/v1/programmes/{prg}/report",
            ],
        ),
        PartyKey(
            "auditor",
            cast.auditor.name,
            cast.auditor.id,
            _plain(keys["auditor"]),
            [
                f"/v1/ledger/trial-balance?programme_id={prg}",
                f"/v1/ledger/transactions?programme_id={prg}&limit=5",
                "/v1/audit/export?format=jsonl -o demo-export.jsonl"
                " && .venv/bin/voucherledger verify demo-export.jsonl",
            ],
        ),
        PartyKey(
            "group",
            g0.name,
            g0.id,
            _plain(keys["group"]),
            ["/v1/vouchers", "/v1/redemptions", f"/v1/programmes/{prg}/suppliers"],
        ),
        PartyKey(
            "supplier",
            s0.name,
            s0.id,
            _plain(keys["supplier"]),
            [
                "/v1/redemptions?status=pending",
                "/v1/settlements",
                f"/v1/ledger/accounts/{paid}/balance",
            ],
        ),
    ]


def _plain(key: KeyCreated) -> str:
    if key.key is None:  # only an idempotent replay has no key; the demo makes none
        raise RuntimeError(f"key {key.id} was created without its secret")
    return key.key


def render(demo: Demo, base_url: str) -> str:
    """What the demo prints: a shell script of comments, key assignments and curls.

    Each command is a path, optionally followed by the rest of a shell pipeline."""
    base = base_url.rstrip("/")
    claims = ", ".join(f"{count} {status}" for status, count in sorted(demo.claims.items()))
    lines = [
        f"# voucherledger demo: programme {demo.programme_id} ({demo.programme_name})",
        f"# {demo.accounts} accounts, {demo.vouchers} vouchers, claims: {claims}.",
        f"# Start the API (make run) and try these against {base}.",
        "# Each key is shown only now.",
    ]
    for party in demo.parties:
        lines += ["", f"# {party.role}: {party.name} ({party.account_id})"]
        lines.append(f"{party.variable}={party.key}")
        for command in party.commands:
            path, _, rest = command.partition(" ")
            curl = f'curl -s -H "Authorization: Bearer ${party.variable}" "{base}{path}"'
            lines.append(f"{curl} {rest}" if rest else curl)
    if demo.sign_ins:
        lines += [
            "",
            f"# In the browser: {base}/console (the password is shown only now).",
        ]
        for person in demo.sign_ins:
            lines.append(
                f"# {person.kind} ({person.role}): {person.name} of {person.account}:"
                f" email {person.email} password {demo.password}"
            )
            if person.totp_secret:
                lines.append(
                    f"#   and a TOTP code: add secret {person.totp_secret} to an"
                    " authenticator app, or run .venv/bin/python -c"
                    f" \"import pyotp; print(pyotp.TOTP('{person.totp_secret}').now())\""
                )
    return "\n".join(lines) + "\n"
