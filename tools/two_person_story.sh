#!/usr/bin/env bash
# A funder with three people (an officer, an approver, a viewer) runs a programme
# through the API from deposit to a settlement two people approved; the jsonl export
# names who proposed and who approved, and `voucherledger verify` passes.
#
# Against a server started with `make run` (plain http, so the session cookie is not
# Secure) on a fresh or existing database:
#     bash tools/two_person_story.sh [http://127.0.0.1:8000]
# Needs curl and jq. Each command is printed before it runs.
set -euo pipefail
API=${1:-http://127.0.0.1:8000}
BIN=${BIN:-.venv/bin}
JAR=$(mktemp -d)
trap 'rm -rf "$JAR"' EXIT
JSON='Content-Type: application/json'
PASSWORD='correct horse battery staple 2027'
RUN=$(date +%s)

say() { printf '\n# %s\n' "$*" >&2; }
show() { printf '$ %s\n' "$*" >&2; "$@"; }

# Sign a person in: the cookie goes to the jar $JAR/$1, the CSRF token to stdout.
sign_in() {
  local who=$1 email=$2 code=${3:-}
  local body="{\"email\": \"$email\", \"password\": \"$PASSWORD\"${code:+, \"totp_code\": \"$code\"}}"
  show curl -sf -c "$JAR/$who" -H "$JSON" "$API/v1/sessions" -d "$body" | jq -r .csrf_token
}
# A request as a signed-in person: cookie and CSRF header.
as() {
  local who=$1 csrf=$2
  shift 2
  show curl -s -b "$JAR/$who" -H "X-CSRF-Token: $csrf" "$@"
}
totp_now() { "$BIN/python" -c "import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).now())" "$1"; }
# A TOTP code may be used once: wait for the next 30-second step before the next one.
next_step() { sleep $((31 - $(date +%s) % 30)); }

say "The scheme operator's key comes from the CLI."
KEY=$("$BIN/voucherledger" keys create-admin --name "Scheme operator" 2>/dev/null)
A="Authorization: Bearer $KEY"
FUNDER=$(show curl -sf -H "$A" -H "$JSON" "$API/v1/accounts" \
  -d '{"kind": "funder", "name": "Diaspora Development Fund", "country": "NL"}' | jq -r .id)
GROUP=$(show curl -sf -H "$A" -H "$JSON" "$API/v1/accounts" -d '{"kind": "group",
  "name": "Kumasi Hometown Association", "group": {"group_type": "hometown_association",
  "origin_country": "GH", "residence_country": "NL", "women_led": true}}' | jq -r .id)
SUPPLIER=$(show curl -sf -H "$A" -H "$JSON" "$API/v1/accounts" -d '{"kind": "supplier",
  "name": "Civic Skills Academy", "supplier": {"service_categories": ["leadership"]}}' | jq -r .id)
S="Authorization: Bearer $(show curl -sf -X POST -H "$A" "$API/v1/accounts/$SUPPLIER/keys" | jq -r .key)"
G="Authorization: Bearer $(show curl -sf -X POST -H "$A" "$API/v1/accounts/$GROUP/keys" | jq -r .key)"

say "The admin invites the funder's owner; she accepts with a password and signs in."
invite() { # inviter-args... account role email -> the invitation token
  local account=$1 role=$2 email=$3
  shift 3
  "$@" -H "$JSON" "$API/v1/accounts/$account/members" \
    -d "{\"email\": \"$email\", \"name\": \"$role $RUN\", \"role\": \"$role\"}" | jq -r .invite_token
}
accept() { show curl -sf -H "$JSON" "$API/v1/invites/accept" \
  -d "{\"token\": \"$1\", \"password\": \"$PASSWORD\"}" | jq -c '{id, role, status}'; }
OWNER_EMAIL="owner.$RUN@fund.example"
accept "$(invite "$FUNDER" owner "$OWNER_EMAIL" show curl -sf -H "$A")"
OWNER=$(sign_in owner "$OWNER_EMAIL")

say "The owner invites an officer, an approver and a viewer; each accepts."
for role in operator approver viewer; do
  accept "$(invite "$FUNDER" "$role" "$role.$RUN@fund.example" as owner "$OWNER")"
done
OFFICER=$(sign_in officer "operator.$RUN@fund.example")
VIEWER=$(sign_in viewer "viewer.$RUN@fund.example")
APPROVER=$(sign_in approver "approver.$RUN@fund.example")

say "The approver sets up TOTP (an approver of a funder must have it)."
SECRET=$(as approver "$APPROVER" -X POST "$API/v1/me/totp" | jq -r .secret)
as approver "$APPROVER" -H "$JSON" "$API/v1/me/totp/confirm" -d "{\"code\": \"$(totp_now "$SECRET")\"}"
echo

say "The officer runs a two-person programme: deposit, accreditation, a voucher."
PRG=$(as officer "$OFFICER" -H "$JSON" "$API/v1/programmes" -d '{
  "name": "Capacity vouchers 2027", "currency": "EUR", "service_categories": ["leadership"],
  "rules": {"settlement_approval": "two_person"}}' | jq -r .id)
as officer "$OFFICER" -H "$JSON" "$API/v1/programmes/$PRG/deposits" \
  -d '{"amount": 1000000, "reference": "transfer 2027-01"}' | jq -c '{transaction_id, amount, created_by}'
as officer "$OFFICER" -H "$JSON" "$API/v1/programmes/$PRG/accreditations" \
  -d "{\"supplier_id\": \"$SUPPLIER\", \"service_categories\": [\"leadership\"]}" | jq -c '{supplier_id, status, created_by}'
VOUCHER=$(as officer "$OFFICER" -H "$JSON" "$API/v1/programmes/$PRG/vouchers" \
  -d "{\"group_id\": \"$GROUP\", \"amount\": 150000}" | jq -r .id)
CODE=$(as officer "$OFFICER" "$API/v1/vouchers/$VOUCHER" | jq -r .code)

say "The viewer reads but may not change anything."
as viewer "$VIEWER" "$API/v1/programmes/$PRG" | jq -c .balances
as viewer "$VIEWER" -H "$JSON" "$API/v1/programmes/$PRG/deposits" \
  -d '{"amount": 1, "reference": "x"}' | jq -c '{status, code}'

say "The supplier claims; the group confirms."
CLAIM=$(show curl -sf -H "$S" -H "$JSON" "$API/v1/redemptions" -d "{
  \"voucher_code\": \"$CODE\", \"amount\": 60000, \"service_category\": \"leadership\",
  \"description\": \"Two-day board leadership course\"}" | jq -r .id)
show curl -sf -X POST -H "$G" "$API/v1/redemptions/$CLAIM/confirm" | jq -c '{id, status, decided_by}'

say "The officer proposes the payout: no money moves yet."
STL=$(as officer "$OFFICER" -H "$JSON" "$API/v1/programmes/$PRG/settlements" \
  -d "{\"supplier_id\": \"$SUPPLIER\", \"payout_reference\": \"SEPA 2027-03-31\"}" | jq -r .id)
as officer "$OFFICER" "$API/v1/settlements/$STL" | jq -c '{status, amount, proposed_by}'
as officer "$OFFICER" "$API/v1/programmes/$PRG" | jq -c '.balances | {payable, settled}'
say "The proposer may not approve it."
as officer "$OFFICER" -X POST "$API/v1/settlements/$STL/approve" | jq -c '{status, code}'

say "The approver signs in again with a TOTP code and approves."
as approver "$APPROVER" -X DELETE "$API/v1/sessions/current" -o /dev/null -w '%{http_code}\n'
next_step
APPROVER=$(sign_in approver "approver.$RUN@fund.example" "$(totp_now "$SECRET")")
as approver "$APPROVER" -X POST "$API/v1/settlements/$STL/approve" \
  | jq -c '{status, amount, proposed_by, approved_by, transaction_id}'
as officer "$OFFICER" "$API/v1/programmes/$PRG" | jq -c '.balances | {payable, settled}'

say "Seal, export the journal as the owner, and verify it offline."
show "$BIN/voucherledger" seal
as owner "$OWNER" "$API/v1/audit/export?format=jsonl&programme_id=$PRG" -o "$JAR/export.jsonl"
jq -c 'select(.kind == "settle") | {kind, actor, metadata}' "$JAR/export.jsonl"
show "$BIN/voucherledger" verify "$JAR/export.jsonl"
