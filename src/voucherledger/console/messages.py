"""Words the console shows that are made in Python rather than in a template:
the notices after a redirect, and the API's refusals explained in plain words.

Each is marked with ``N_`` so that ``make i18n`` extracts it, and translated when the
page is rendered. A refusal with no entry here shows the API's own ``detail``.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


# After a form succeeded: ?notice=<code> on the page it redirected to.
NOTICES: dict[str, str] = {
    "signed_out": N_("You are signed out."),
    "invite_accepted": N_("Your password is set. Sign in to continue."),
    "totp_confirmed": N_("Two-step sign-in is on for your account."),
    "claim_confirmed": N_("The claim is confirmed: the supplier will be paid."),
    "claim_rejected": N_("The claim is rejected: the money is back on the voucher."),
    "feedback_given": N_("Thank you: your feedback is recorded."),
    "account_created": N_("The account is made. Invite its first owner now."),
    "key_revoked": N_("The key is revoked: it no longer works."),
    # The suppliers' pages.
    "claim_made": N_("Your claim is made."),
    "claim_cancelled": N_("The claim is cancelled: nothing will be paid for it."),
    "claim_refunded": N_("The refund is made: the money is back on the voucher."),
    "profile_saved": N_("Your details are saved."),
    # A programme's vouchers.
    "voucher_issued": N_("The voucher is issued."),
    "vouchers_issued": N_("The vouchers are issued."),
    "voucher_revoked": N_("The voucher is revoked: its balance is back in the budget."),
    # A programme's suppliers (console/accreditation.py).
    "supplier_accredited": N_("The supplier is accredited for the categories ticked."),
    "supplier_suspended": N_("The supplier is suspended: its new claims are refused."),
    # The programmes' pages.
    "programme_created": N_("The programme is made. Deposit money into it to start."),
    "deposit_made": N_("The deposit is recorded: the balances below include it."),
    "programme_was_closed": N_(
        "The programme is closed: no more vouchers, and its unissued budget "
        "is back with the funder."
    ),
    "programme_swept": N_(
        "The sweep is done: vouchers past their date are ended and timed-out holds released."
    ),
    # Settlements and members (funders' and managers' pages).
    "settlement_proposed": N_(
        "The settlement is proposed: another approver or owner approves it before it is paid."
    ),
    "settlement_paid": N_("The settlement is made: the supplier is paid."),
    "settlement_approved": N_("The settlement is approved: the supplier is paid."),
    "settlement_rejected": N_("The settlement is rejected: nothing is paid."),
    "member_updated": N_("The member is changed."),
}

# API problem codes, in words a group or a supplier can act on.
PROBLEMS: dict[str, str] = {
    "invalid_credentials": N_("The email or the password is wrong."),
    "totp_required": N_("Enter the 6-digit code from your authenticator app."),
    "rate_limited": N_("Too many attempts. Wait a few minutes, then try again."),
    "csrf_failed": N_("This form is out of date. Reload the page and try again."),
    "forbidden": N_("Your role does not allow this."),
    "not_found": N_("Nothing was found here."),
    "validation_error": N_("Some fields need correcting."),
    "database_unavailable": N_(
        "The service is busy or unreachable. Try again: nothing is done twice."
    ),
    "idempotency_key_reused": N_("This form was already sent with other values. Reload it."),
    "invite_invalid": N_("This invitation link is not valid, or was already used."),
    "invite_expired": N_("This invitation has expired. Ask for a new one."),
    "invalid_totp_code": N_("That code is not right. Enter the current 6-digit code."),
    "account_required": N_("Choose the account to sign in to."),
    "voucher_expired": N_("This voucher has expired."),
    "voucher_revoked": N_("This voucher was revoked by its funder."),
    "voucher_exhausted": N_("This voucher has no balance left to claim."),
    "insufficient_funds": N_("The amount is more than the voucher can pay."),
    "category_not_allowed": N_("This voucher does not pay for that category."),
    "supplier_not_accredited": N_("You are not accredited for this programme or category."),
    "programme_closed": N_("This programme is closed."),
    "invalid_state": N_("This cannot be done in the claim's present state."),
    "limit_exceeded": N_("The amount is over a limit of the programme."),
    "last_owner": N_("An account must keep at least one owner."),
    "member_exists": N_("This person is already a member of the account."),
    # The suppliers' pages.
    "voucher_unknown": N_(
        "No voucher with this code can be claimed by you. Check the code with the group."
    ),
    "voucher_code_invalid": N_("This code has a typo: check each character."),
    "evidence_invalid": N_("A file of this claim cannot be used. Choose it again."),
    "evidence_empty": N_("This file is empty."),
    "evidence_type_not_allowed": N_("Only PDF, JPEG and PNG files can be attached."),
    "evidence_too_large": N_("This file is too large."),
    "payload_too_large": N_("The files are too large to send together. Send fewer."),
    "already_settled": N_("This claim was paid already: it cannot be refunded."),
    "settlement_pending": N_(
        "This claim is in a payment awaiting approval: it cannot be refunded now."
    ),
    # A programme's vouchers.
    "group_not_eligible": N_("This group is not eligible under the programme's rules."),
    # Settlements.
    "second_person_required": N_(
        "Another person approves this settlement: the one who proposed it cannot."
    ),
    "totp_setup_required": N_("Set up two-step sign-in before you approve a payment."),
    "nothing_to_settle": N_("This supplier has nothing left to settle."),
}

# Service categories in words.
CATEGORIES: dict[str, str] = {
    "leadership": N_("Leadership"),
    "management": N_("Management"),
    "fundraising": N_("Fundraising"),
    "financial_literacy": N_("Financial literacy"),
    "financial_management": N_("Financial management"),
    "governance": N_("Governance"),
    "advocacy": N_("Advocacy"),
    "enterprise_development": N_("Enterprise development"),
    "export_markets": N_("Export markets"),
    "marketing": N_("Marketing"),
    "legal_registration": N_("Legal registration"),
    "digital_skills": N_("Digital skills"),
    "monitoring_evaluation": N_("Monitoring and evaluation"),
    "volunteering": N_("Volunteering"),
    "networking": N_("Networking"),
    "gender_mainstreaming": N_("Gender mainstreaming"),
}
