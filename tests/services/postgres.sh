#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, on 127.0.0.1 and a free port.
#
#   tests/services/postgres.sh start   # prints the DSN on stdout (reuses a running server)
#   tests/services/postgres.sh dsn     # prints the DSN of the running server
#   tests/services/postgres.sh stop    # stops the server and deletes its data
#   LTI_PG_INSTANCE=name tests/services/postgres.sh start|dsn|stop   # one more, independent server
#
# State lives in var/postgres/ of the repository. Binaries come from PATH (pg_ctl, initdb), else
# /usr/lib/postgresql/*/bin, else Debian's `postgresql` package is installed with apt-get (root only).
# initdb refuses to run as root, so as root the server runs as the dedicated user `ltipg`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# LTI_PG_INSTANCE names a separate server (the Makefile uses one per run, so two runs in one checkout
# never stop each other's server); without it, the single server in var/postgres.
STATE_DIR="$ROOT/var/postgres${LTI_PG_INSTANCE:+/$LTI_PG_INSTANCE}"
STATE_FILE="$STATE_DIR/state"   # BASE=..., DSN=...   (BASE holds data/ and server.log)
PG_USER_OS="ltipg"
DB_USER="lti"
DB_NAME="lti_test"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local d
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

ensure_bindir() {
    if BINDIR="$(find_bindir)"; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "no PostgreSQL binaries found and cannot install them (need root and apt-get)"
        return 1
    fi
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    # Debian's package starts its own cluster; we do not need it.
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        for c in $(ls -d /etc/postgresql/*/main 2>/dev/null); do
            v="$(basename "$(dirname "$c")")"
            pg_ctlcluster "$v" main stop >/dev/null 2>&1 || true
        done
    fi
    BINDIR="$(find_bindir)"
}

# Run a command as the server's OS user (root: `ltipg`; anybody else: themselves), from /.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u "$PG_USER_OS" -- "$@")
        else
            local q
            q="$(printf '%q ' "$@")"
            (cd / && su -s /bin/sh "$PG_USER_OS" -c "$q")
        fi
    else
        (cd / && "$@")
    fi
}

ensure_os_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    if ! id "$PG_USER_OS" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER_OS" \
            || useradd -r -M -s /bin/false "$PG_USER_OS"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

read_state() {
    BASE=""
    DATA=""
    DSN=""
    [ -f "$STATE_FILE" ] || return 1
    BASE="$(sed -n 's/^BASE=//p' "$STATE_FILE")"
    DSN="$(sed -n 's/^DSN=//p' "$STATE_FILE")"
    DATA="$BASE/data"
    [ -n "$BASE" ]
}

is_running() {
    read_state || return 1
    [ -n "$DSN" ] && [ -f "$DATA/postmaster.pid" ] || return 1
    ensure_bindir || return 1
    as_pg "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

# The server's directory (data/ and server.log): var/postgres/server, unless the server's OS user
# cannot reach the repository (a checkout under /root), then a private directory under /tmp.
pick_base_dir() {
    local want="$STATE_DIR/server"
    if [ "$(id -u)" -ne 0 ]; then
        echo "$want"
        return
    fi
    if (cd / && runuser -u "$PG_USER_OS" -- test -x "$STATE_DIR") 2>/dev/null; then
        echo "$want"
    else
        mktemp -d /tmp/lti-publish-pg.XXXXXX
    fi
}

start() {
    mkdir -p "$STATE_DIR"
    chmod 755 "$STATE_DIR"
    if is_running; then
        echo "$DSN"
        return 0
    fi
    stop_quietly
    ensure_bindir
    ensure_os_user

    local base data logfile pwfile password port attempt
    base="$(pick_base_dir)"
    data="$base/data"
    logfile="$base/server.log"
    rm -rf "$data"
    mkdir -p "$data"
    chmod 755 "$base"
    chmod 700 "$data"
    printf 'BASE=%s\n' "$base" >"$STATE_FILE"
    password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    pwfile="$(mktemp "$base/pw.XXXXXX")"
    echo "$password" >"$pwfile"
    : >"$logfile"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PG_USER_OS" "$base" "$data" "$pwfile" "$logfile"
    fi

    if ! as_pg "$BINDIR/initdb" -D "$data" -U "$DB_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 --no-sync >>"$logfile" 2>&1; then
        # Older releases or images without the C.UTF-8 locale.
        rm -rf "${data:?}"/*
        as_pg "$BINDIR/initdb" -D "$data" -U "$DB_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
            -E UTF8 --locale=C --no-sync >>"$logfile" 2>&1 || {
            rm -f "$pwfile"
            log "initdb failed:"
            tail -n 20 "$logfile" >&2
            stop_quietly
            return 1
        }
    fi
    rm -f "$pwfile"

    for attempt in 1 2 3; do
        port="$(free_port)"
        # No Unix socket: TCP on loopback only. fsync off: the data is thrown away.
        if as_pg "$BINDIR/pg_ctl" -D "$data" -l "$logfile" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50" \
            start >/dev/null 2>&1; then
            DSN="postgresql://$DB_USER:$password@127.0.0.1:$port/$DB_NAME"
            printf 'BASE=%s\nDSN=%s\n' "$base" "$DSN" >"$STATE_FILE"
            chmod 600 "$STATE_FILE"
            if ! PGPASSWORD="$password" "$BINDIR/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME" >&2; then
                log "createdb failed"
                stop_quietly
                return 1
            fi
            echo "$DSN"
            return 0
        fi
        log "start on port $port failed (attempt $attempt)"
    done
    log "could not start PostgreSQL:"
    tail -n 20 "$logfile" >&2
    stop_quietly
    return 1
}

stop_quietly() {
    if read_state; then
        if [ -f "$DATA/postmaster.pid" ] && ensure_bindir; then
            as_pg "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        fi
        case "$BASE" in
            "$STATE_DIR"/* | /tmp/lti-publish-pg.*) rm -rf "$BASE" ;;
        esac
    fi
    rm -f "$STATE_FILE"
}

case "${1:-}" in
    start) start ;;
    stop)
        stop_quietly
        if [ -n "${LTI_PG_INSTANCE:-}" ]; then rmdir "$STATE_DIR" 2>/dev/null || true; fi
        ;;
    dsn)
        if is_running; then echo "$DSN"; else log "not running"; exit 1; fi
        ;;
    *)
        echo "usage: $0 start|stop|dsn" >&2
        exit 2
        ;;
esac
