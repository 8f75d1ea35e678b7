#!/usr/bin/env bash
# A streaming replica of this machine's PostgreSQL, for the read-replica tests
# (tests/replica/, VOUCHERLEDGER_READ_DATABASE_URL): a second cluster of the same
# version, named "replica", on port 5433, made by pg_basebackup from the primary at
# 127.0.0.1:5432 and streaming from it (hot standby: it answers read-only queries).
#
#     bash tools/pg_replica.sh          # as root; .ci/run calls it before `make test`
#
# Idempotent: a replica that is up and streaming is left alone. One that is down is
# started; one that cannot stream is made again from a fresh base backup.
#
# On the primary it adds, if missing, `host replication all 127.0.0.1/32 trust` to
# pg_hba.conf, and sets wal_keep_size = 2GB when it is 0: the primary keeps that much
# WAL for a replica that falls behind (the test suite writes WAL fast: every test
# database is a copy of a template, and with wal_keep_size 0 segments were recycled
# between the base backup and the first streamed byte). No replication slot, so a
# stopped replica never fills the primary's disk; the next run makes it again. It needs
# wal_level replica (or logical) and max_wal_senders > 0, PostgreSQL's defaults.
#
# Stop it with `pg_ctlcluster --skip-systemctl-redirect 15 replica stop`; drop it with
# `pg_dropcluster --stop 15 replica`.
set -euo pipefail

PRIMARY_HOST=${PRIMARY_HOST:-127.0.0.1}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
NAME=replica
VERSION=${PG_VERSION:-$(ls /etc/postgresql | sort -V | tail -n 1)}
DATA=/var/lib/postgresql/$VERSION/$NAME

say() { printf 'pg_replica: %s\n' "$*" >&2; }
primary() { psql -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -wXAtqc "$1"; }
replica() { psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -wXAtqc "$1" 2>/dev/null; }
streaming() {
    [ "$(replica 'SELECT pg_is_in_recovery()')" = t ] &&
        [ "$(replica 'SELECT status FROM pg_stat_wal_receiver')" = streaming ]
}
wait_streaming() {
    for _ in $(seq 1 "$1"); do
        streaming && return 0
        sleep 1
    done
    return 1
}
exists() { pg_lsclusters -h | awk -v v="$VERSION" -v n="$NAME" '$1 == v && $2 == n' | grep -q .; }
start() { pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" start; }
stop() { pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" stop -m fast >/dev/null 2>&1 || true; }

if streaming; then
    say "replica $VERSION/$NAME on port $REPLICA_PORT is streaming; nothing to do"
    exit 0
fi

# --- the primary: WAL for a standby, and a replication connection from 127.0.0.1 ----
wal_level=$(primary 'SHOW wal_level')
senders=$(primary 'SHOW max_wal_senders')
if [ "$wal_level" = minimal ] || [ "$senders" -eq 0 ]; then
    say "the primary has wal_level=$wal_level, max_wal_senders=$senders: set wal_level=replica" \
        "and max_wal_senders=10 (PostgreSQL's defaults) and restart it"
    exit 1
fi
hba=$(primary 'SHOW hba_file')
if ! grep -Eq '^\s*host\s+replication\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    say "adding 'host replication all 127.0.0.1/32 trust' to $hba and reloading"
    printf '\n# streaming replica of tools/pg_replica.sh\nhost replication all 127.0.0.1/32 trust\n' >>"$hba"
    primary 'SELECT pg_reload_conf()' >/dev/null
fi
if [ "$(primary 'SHOW wal_keep_size')" = 0 ]; then
    say "keeping WAL for a replica that falls behind: wal_keep_size = 2GB"
    primary "ALTER SYSTEM SET wal_keep_size = '2GB'" >/dev/null
    primary 'SELECT pg_reload_conf()' >/dev/null
fi

# --- a replica that exists and only needs starting ---------------------------------
if exists && [ -f "$DATA/standby.signal" ]; then
    say "starting the existing replica"
    start || true
    if wait_streaming 30; then
        say "replica $VERSION/$NAME on port $REPLICA_PORT is streaming"
        exit 0
    fi
    say "the existing replica does not stream; making it again from a base backup"
fi

# --- a new replica: an empty cluster whose data directory is a base backup ---------
if ! exists; then
    say "creating cluster $VERSION/$NAME on port $REPLICA_PORT"
    pg_createcluster "$VERSION" "$NAME" -p "$REPLICA_PORT" >/dev/null
fi
stop
conf=/etc/postgresql/$VERSION/$NAME/conf.d/voucherledger-replica.conf
# Feedback keeps the primary's VACUUM from removing rows a long export on the replica
# still reads (else the replica cancels that export after max_standby_streaming_delay).
printf 'hot_standby = on\nhot_standby_feedback = on\n' >"$conf"
# The primary's client rules (trust from 127.0.0.1), not the new cluster's defaults.
cp "$hba" "/etc/postgresql/$VERSION/$NAME/pg_hba.conf"
# A backup cut short (the primary restarted, its connection was terminated) is taken
# again, up to three times in all.
for attempt in 1 2 3; do
    say "taking a base backup of $PRIMARY_HOST:$PRIMARY_PORT into $DATA (attempt $attempt)"
    rm -rf "$DATA"
    install -d -o postgres -g postgres -m 700 "$DATA"
    if runuser -u postgres -- pg_basebackup -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres \
        -D "$DATA" -R -X stream -c fast; then
        break
    fi
    [ "$attempt" -lt 3 ] || { say "the base backup failed three times"; exit 1; }
    sleep 2
done
start
if ! wait_streaming 60; then
    say "the replica did not start streaming; see /var/log/postgresql/postgresql-$VERSION-$NAME.log"
    exit 1
fi
say "replica $VERSION/$NAME on port $REPLICA_PORT is streaming from $PRIMARY_HOST:$PRIMARY_PORT"
