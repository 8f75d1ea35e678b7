"""A programme's accredited suppliers with their claims and ratings, for the parties and
for the groups holding the programme's vouchers (who choose where to spend them)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from voucherledger.core.auth import Principal
from voucherledger.core.errors import NotFound
from voucherledger.programmes import repository as programmes_repo
from voucherledger.programmes import service as programmes
from voucherledger.programmes.schemas import SupplierListing
from voucherledger.redemptions import repository as redemptions_repo
from voucherledger.vouchers import repository as vouchers_repo


def supplier_list(
    session: Session, principal: Principal, programme_id: str
) -> list[SupplierListing]:
    """Parties, and groups holding the programme's vouchers, see its suppliers."""
    if principal.kind == "group":
        if programmes_repo.get(
            session, programme_id
        ) is None or not vouchers_repo.group_holds_voucher(
            session, programme_id, principal.account_id
        ):
            raise NotFound(f"No programme {programme_id}.")
    else:
        programmes.access(session, principal, programme_id)
    stats = redemptions_repo.supplier_stats(session, programme_id)
    listing = []
    for acc, name in programmes_repo.suppliers(session, programme_id):
        claims, feedback_count, rating = stats.get(acc.supplier_id, (0, 0, None))
        listing.append(
            SupplierListing(
                supplier_id=acc.supplier_id,
                name=name,
                service_categories=list(acc.service_categories),
                status=acc.status,
                claim_count=claims,
                feedback_count=feedback_count,
                average_rating=round(rating, 2) if rating is not None else None,
            )
        )
    return listing
