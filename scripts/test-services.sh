#!/usr/bin/env bash
# Idempotently prepare the services the test suite needs:
#   - Debian packages: chromium, fonts-liberation, redis-server, wrk, nginx (started by
#     the two-node test itself, never as a service)
#   - PostgreSQL on 127.0.0.1:5432 (trust auth, role "electro", database "test")
#   - Redis on 127.0.0.1:6379 (no persistence)
# Prints one summary line at the end. Exits 0 even when a service could not be
# provided (the test suite decides whether that is fatal); only a bug in this
# script's own logic makes it fail.
#
# Test-only settings: PostgreSQL runs with fsync/full_page_writes off. Never
# point this script at a cluster holding data you care about.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=${ELECTRO_TEST_REDIS_PORT:-6379}  # override only to test this script
APT_PACKAGES=(chromium fonts-liberation redis-server wrk nginx)

warn() { echo "test-services: warning: $*" >&2; }
info() { echo "test-services: $*" >&2; }

# --- privileges --------------------------------------------------------------
# SUDO is the prefix for commands needing root; CAN_ROOT says whether we have it.
SUDO=()
CAN_ROOT=0
if [ "$(id -u)" -eq 0 ]; then
    CAN_ROOT=1
elif command -v sudo >/dev/null 2>&1; then
    if sudo -n true >/dev/null 2>&1; then
        SUDO=(sudo -n); CAN_ROOT=1
    elif [ -t 0 ]; then
        # Interactive laptop: sudo may ask for a password.
        SUDO=(sudo); CAN_ROOT=1
    fi
fi

as_root() { "${SUDO[@]}" "$@"; }

# Run a command as the postgres OS user from /tmp (avoids cwd permission noise).
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd /tmp && su postgres -s /bin/sh -c "$1")
    else
        (cd /tmp && "${SUDO[@]}" -u postgres sh -c "$1")
    fi
}

# --- 1. apt packages ---------------------------------------------------------
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${APT_PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    # A machine without any PostgreSQL server gets Debian's default one.
    if [ ! -d /usr/lib/postgresql ] || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
        missing+=(postgresql)
    fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$CAN_ROOT" -ne 1 ]; then
        warn "not root and no usable sudo: cannot install ${missing[*]}"
    else
        info "installing: ${missing[*]}"
        apt_log=$(mktemp)
        if as_root env DEBIAN_FRONTEND=noninteractive apt-get update >"$apt_log" 2>&1 \
            && as_root env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1; then
            :
        else
            warn "apt-get failed installing ${missing[*]}; last lines of its output:"
            tail -n 15 "$apt_log" >&2 || true
        fi
        rm -f "$apt_log"
    fi
fi

# --- 2. PostgreSQL -----------------------------------------------------------
pg_status=""

pg_ready() {
    command -v pg_isready >/dev/null 2>&1 \
        && pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1
}

# True when the test suite's own connection already works.
pg_electro_ok() {
    command -v psql >/dev/null 2>&1 \
        && [ "$(PGCONNECT_TIMEOUT=3 psql -w -X -qtA -h "$PG_HOST" -p "$PG_PORT" \
                -U electro -d test -c 'select 1' 2>/dev/null)" = "1" ]
}

# Put "host all all 127.0.0.1/32 trust" first among the host rules of $1.
ensure_hba_trust() {
    local hba=$1 tmp
    # Already first host rule? Then nothing to do.
    if awk '
        /^[[:space:]]*#/ || NF == 0 { next }
        $1 ~ /^host/ {
            ok = ($1 == "host" && $2 == "all" && $3 == "all" && $4 == "127.0.0.1/32" && $5 == "trust" && NF == 5)
            exit
        }
        END { exit !ok }' "$hba"; then
        return 0
    fi
    tmp=$(mktemp)
    awk '
        function ours() { return ($1 == "host" && $2 == "all" && $3 == "all" && $4 == "127.0.0.1/32" && $5 == "trust" && NF == 5) }
        /^[[:space:]]*#/ || NF == 0 { print; next }
        ours() { next }
        !done && $1 ~ /^host/ {
            print "# electro test suite: trust local TCP connections (test machines only)"
            print "host    all             all             127.0.0.1/32            trust"
            done = 1
        }
        { print }
        END {
            if (!done) {
                print "# electro test suite: trust local TCP connections (test machines only)"
                print "host    all             all             127.0.0.1/32            trust"
            }
        }' "$hba" >"$tmp"
    # cat (not mv) keeps the file's owner and mode.
    cat "$tmp" >"$hba"
    rm -f "$tmp"
}

write_if_changed() {  # write_if_changed FILE CONTENT
    local file=$1 content=$2
    if [ ! -f "$file" ] || [ "$(cat "$file")" != "$content" ]; then
        printf '%s\n' "$content" >"$file"
        chown postgres:postgres "$file" 2>/dev/null || true
    fi
}

setup_pg_cluster() {  # returns non-zero with pg_status set on failure
    local ver confdir
    ver=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$ver" ]; then
        pg_status="unavailable: PostgreSQL server not installed"; return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        # Cluster files belong to root/postgres: re-run this whole script as root.
        if [ "$CAN_ROOT" -eq 1 ] && "${SUDO[@]}" bash "${BASH_SOURCE[0]}" >/dev/null && pg_ready; then
            return 0
        fi
        pg_status="unavailable: not running and configuring it needs root (run this script as root)"
        return 1
    fi
    if ! pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main" { f = 1 } END { exit !f }'; then
        info "creating PostgreSQL $ver cluster main"
        if ! pg_createcluster "$ver" main >/dev/null 2>&1; then
            pg_status="unavailable: pg_createcluster $ver main failed"; return 1
        fi
    fi
    confdir=/etc/postgresql/$ver/main
    mkdir -p "$confdir/conf.d"
    write_if_changed "$confdir/conf.d/electro.conf" "# Written by scripts/test-services.sh: settings for the test suite only.
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off"
    ensure_hba_trust "$confdir/pg_hba.conf"

    local out
    if ! out=$(pg_ctlcluster "$ver" main start 2>&1); then
        # "already running" is fine (e.g. listening elsewhere until restart).
        if ! grep -qi 'already running' <<<"$out"; then
            pg_status="unavailable: pg_ctlcluster $ver main start failed: $(tail -n 1 <<<"$out")"
            return 1
        fi
        pg_ctlcluster "$ver" main restart >/dev/null 2>&1 || true
    fi
    local i
    for i in $(seq 1 150); do
        pg_ready && return 0
        sleep 0.2
    done
    pg_status="unavailable: not ready on $PG_HOST:$PG_PORT after 30s (see /var/log/postgresql/postgresql-$ver-main.log)"
    return 1
}

ensure_pg_roles() {
    if [ "$CAN_ROOT" -ne 1 ] || ! id postgres >/dev/null 2>&1; then
        pg_status="unavailable: role electro/database test missing and no way to act as user postgres"
        return 1
    fi
    local sql out
    # \gexec runs the generated statement only when the row exists (CREATE
    # DATABASE cannot run inside a DO block).
    sql="SELECT 'CREATE ROLE root SUPERUSER LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'root') \\gexec
SELECT 'CREATE ROLE electro LOGIN CREATEDB SUPERUSER' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'electro') \\gexec
SELECT 'CREATE DATABASE test OWNER electro' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'test') \\gexec"
    if ! out=$(printf '%s\n' "$sql" | as_postgres "psql -X -q -v ON_ERROR_STOP=1 -p $PG_PORT -d postgres" 2>&1); then
        pg_status="unavailable: creating roles/database failed: $(tail -n 1 <<<"$out")"
        return 1
    fi
}

if pg_electro_ok; then
    :   # fast path: everything is already there
else
    if ! pg_ready; then
        setup_pg_cluster || true
    fi
    if [ -z "$pg_status" ] && pg_ready && ! pg_electro_ok; then
        ensure_pg_roles || true
    fi
    if [ -z "$pg_status" ] && ! pg_electro_ok; then
        if pg_ready; then
            pg_status="unavailable: server up but cannot connect as electro to database test (check pg_hba.conf trust rule)"
        else
            pg_status="unavailable: not running on $PG_HOST:$PG_PORT"
        fi
    fi
fi
[ -n "$pg_status" ] || pg_status="ready"

# --- 3. Redis ----------------------------------------------------------------
redis_status=""

redis_ping() {
    command -v redis-cli >/dev/null 2>&1 \
        && [ "$(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
}

if ! redis_ping; then
    if ! command -v redis-server >/dev/null 2>&1; then
        redis_status="unavailable: redis-server not installed"
    elif ! command -v redis-cli >/dev/null 2>&1; then
        redis_status="unavailable: redis-cli not installed"
    else
        if ! out=$(cd /tmp && redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
                --save '' --appendonly no 2>&1); then
            redis_status="unavailable: redis-server failed to start: $(tail -n 1 <<<"$out")"
        else
            for i in $(seq 1 50); do
                redis_ping && break
                sleep 0.2
            done
            redis_ping || redis_status="unavailable: no PONG on $REDIS_HOST:$REDIS_PORT after 10s"
        fi
    fi
fi
[ -n "$redis_status" ] || redis_status="ready"

# --- 4. Chromium + summary ---------------------------------------------------
chromium_path=""
for c in /usr/bin/chromium "$(command -v chromium 2>/dev/null || true)" "$(command -v chromium-browser 2>/dev/null || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then chromium_path=$c; break; fi
done
chromium_status=${chromium_path:-"unavailable: chromium not installed"}

echo "services: chromium $chromium_status; postgresql $PG_HOST:$PG_PORT $pg_status; redis $REDIS_HOST:$REDIS_PORT $redis_status"
exit 0
