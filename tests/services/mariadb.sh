#!/usr/bin/env bash
# A throwaway MariaDB server (the database Open edX runs on) for the test suite, on 127.0.0.1 and a
# free port.
#
#   tests/services/mariadb.sh start   # prints the DSN on stdout (reuses a running server)
#   tests/services/mariadb.sh dsn     # prints the DSN of the running server
#   tests/services/mariadb.sh stop    # stops the server and deletes its data
#   tests/services/mariadb.sh deps    # installs what building mysqlclient (the driver) needs
#   LTI_MARIADB_INSTANCE=name tests/services/mariadb.sh start|dsn|stop   # one more, independent server
#
# State lives in var/mariadb/ of the repository. Binaries come from PATH (mariadbd or mysqld,
# mariadb-install-db or mysql_install_db), else /usr/sbin, else Debian's `mariadb-server` package is
# installed with apt-get (root only). As root the server runs as root (`--user=root`): nothing to
# chown, and it can reach a checkout under /root.
#
# The user `lti` (random password) owns the databases `lti_*` and `test_lti_*`, so Django may create
# and drop its test database `test_lti_test` (and pytest-xdist's `test_lti_test_gw0`...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# LTI_MARIADB_INSTANCE names a separate server (the Makefile uses one per run, so two runs in one
# checkout never stop each other's server); without it, the single server in var/mariadb.
STATE_DIR="$ROOT/var/mariadb${LTI_MARIADB_INSTANCE:+/$LTI_MARIADB_INSTANCE}"
STATE_FILE="$STATE_DIR/state"   # BASE=..., DSN=...   (BASE holds data/, server.log, server.pid)
DB_USER="lti"
DB_NAME="lti_test"

log() { echo "mariadb.sh: $*" >&2; }

# apt-get install, refreshing the package lists once if a package is not found.
apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "cannot install $* (need root and apt-get)"
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$@" >&2 && return 0
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "$@" >&2
}

find_bin() {   # find_bin name... : the first that exists, on PATH or in /usr/sbin
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
        if [ -x "/usr/sbin/$name" ]; then
            echo "/usr/sbin/$name"
            return 0
        fi
    done
    return 1
}

find_bins() {
    SERVER="$(find_bin mariadbd mysqld)" && INSTALL_DB="$(find_bin mariadb-install-db mysql_install_db)" \
        && ADMIN="$(find_bin mariadb-admin mysqladmin)"
}

ensure_bins() {
    find_bins && return 0
    log "installing Debian's mariadb-server package"
    apt_install mariadb-server || return 1
    # Debian's package would start its own server; policy-rc.d usually forbids it. Either way it
    # has its own data directory and socket, and we do not touch it.
    find_bins
}

# Headers and pkg-config for building mysqlclient (`pip install` of the test extra), unless they or
# mysqlclient's own MYSQLCLIENT_CFLAGS/MYSQLCLIENT_LDFLAGS are already there.
deps() {
    if [ -n "${MYSQLCLIENT_CFLAGS:-}" ] && [ -n "${MYSQLCLIENT_LDFLAGS:-}" ]; then
        return 0
    fi
    local pc
    if command -v pkg-config >/dev/null 2>&1; then
        for pc in mysqlclient mariadb libmariadb perconaserverclient; do
            pkg-config --exists "$pc" && return 0
        done
    fi
    if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
        log "mysqlclient needs pkg-config and the MariaDB or MySQL client headers (Debian: libmariadb-dev)"
        return 0   # let pip say what is missing; MYSQLCLIENT_CFLAGS/LDFLAGS may still be set by hand
    fi
    log "installing pkg-config and libmariadb-dev (to build mysqlclient)"
    apt_install pkg-config libmariadb-dev
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

read_state() {
    BASE=""
    DSN=""
    [ -f "$STATE_FILE" ] || return 1
    BASE="$(sed -n 's/^BASE=//p' "$STATE_FILE")"
    DSN="$(sed -n 's/^DSN=//p' "$STATE_FILE")"
    [ -n "$BASE" ]
}

# The pid in server.pid, if that process is still a (live) MariaDB server.
server_pid() {
    local pid comm
    [ -n "${BASE:-}" ] && [ -f "$BASE/server.pid" ] || return 1
    pid="$(cat "$BASE/server.pid" 2>/dev/null)"
    [ -n "$pid" ] && alive "$pid" || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || ps -o comm= -p "$pid" 2>/dev/null)" || return 1
    case "$comm" in
        mariadbd* | mysqld*) echo "$pid" ;;
        *) return 1 ;;
    esac
}

# A process that exists and is not a zombie (a killed server stays one until PID 1, which in a
# container may be slow at it, reaps it).
alive() {
    local stat
    stat="$(ps -o stat= -p "$1" 2>/dev/null)" && [ -n "$stat" ] && [ "${stat#Z}" = "$stat" ]
}

is_running() {
    read_state && [ -n "$DSN" ] && server_pid >/dev/null
}

# The server's Unix socket (it always makes one): next to its data, unless that path is too long
# for a socket address, then in a private directory under /tmp.
pick_socket() {
    local base="$1"
    if [ "${#base}" -lt 90 ]; then
        echo "$base/server.sock"
    else
        echo "$(mktemp -d /tmp/lti-publish-mariadb.XXXXXX)/server.sock"
    fi
}

start() {
    mkdir -p "$STATE_DIR"
    if is_running; then
        echo "$DSN"
        return 0
    fi
    stop_quietly
    ensure_bins || return 1

    local base data logfile pidfile sock sqlfile password port attempt pid i
    local -a as_user=() tuning
    base="$STATE_DIR/server"
    data="$base/data"
    logfile="$base/server.log"
    pidfile="$base/server.pid"
    rm -rf "$base"
    mkdir -p "$data"
    chmod 700 "$base" "$data"
    sock="$(pick_socket "$base")"
    printf 'BASE=%s\nSOCK=%s\n' "$base" "$sock" >"$STATE_FILE"
    chmod 600 "$STATE_FILE"
    : >"$logfile"
    # mariadbd refuses to run as root unless told to.
    if [ "$(id -u)" -eq 0 ]; then as_user=(--user=root); fi
    # fsync off, small buffers and redo log: the data is thrown away.
    tuning=(
        --innodb-buffer-pool-size=64M --innodb-log-file-size=16M --innodb-flush-log-at-trx-commit=0
        --innodb-doublewrite=0 --sync-binlog=0 --skip-log-bin
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
    )

    password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    sqlfile="$(mktemp "$base/init.XXXXXX.sql")"
    # mariadb-install-db runs this with the grant tables off; FLUSH PRIVILEGES turns them on.
    cat >"$sqlfile" <<SQL
FLUSH PRIVILEGES;
CREATE DATABASE \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`lti\\_%\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`test\\_lti\\_%\`.* TO '$DB_USER'@'127.0.0.1';
SQL
    # --no-defaults: no /etc/mysql/*.cnf (Debian's server settings, its socket, its datadir).
    if ! "$INSTALL_DB" --no-defaults "${as_user[@]}" --datadir="$data" --auth-root-authentication-method=socket \
        --skip-test-db --skip-name-resolve --extra-file="$sqlfile" "${tuning[@]}" >>"$logfile" 2>&1; then
        rm -f "$sqlfile"
        log "$(basename "$INSTALL_DB") failed:"
        grep -m 5 -E 'ERROR|error' "$logfile" >&2 || tail -n 20 "$logfile" >&2
        stop_quietly
        return 1
    fi
    rm -f "$sqlfile"

    for attempt in 1 2 3; do
        port="$(free_port)"
        rm -f "$pidfile"
        "$SERVER" --no-defaults "${as_user[@]}" --datadir="$data" --bind-address=127.0.0.1 --port="$port" \
            --socket="$sock" --pid-file="$pidfile" --log-error="$logfile" --skip-name-resolve \
            --max-connections=100 "${tuning[@]}" </dev/null >>"$logfile" 2>&1 &
        pid=$!
        for i in $(seq 1 300); do   # up to 60 s
            if ! alive "$pid"; then
                break
            fi
            if MYSQL_PWD="$password" "$ADMIN" --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u "$DB_USER" \
                --connect-timeout=2 ping >/dev/null 2>&1; then
                [ -f "$pidfile" ] || echo "$pid" >"$pidfile"
                DSN="mysql://$DB_USER:$password@127.0.0.1:$port/$DB_NAME"
                printf 'BASE=%s\nSOCK=%s\nDSN=%s\n' "$base" "$sock" "$DSN" >"$STATE_FILE"
                echo "$DSN"
                return 0
            fi
            sleep 0.2
        done
        if alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        log "start on port $port failed (attempt $attempt)"
    done
    log "could not start MariaDB:"
    tail -n 20 "$logfile" >&2
    stop_quietly
    return 1
}

stop_quietly() {
    local pid i sock
    if read_state; then
        if pid="$(server_pid)"; then
            # The data is deleted anyway: no clean shutdown (SIGTERM takes a second or more).
            kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 1 100); do
                alive "$pid" || break
                sleep 0.05
            done
        fi
        sock="$(sed -n 's/^SOCK=//p' "$STATE_FILE")"
        case "$sock" in
            /tmp/lti-publish-mariadb.*/server.sock) rm -rf "$(dirname "$sock")" ;;
        esac
        case "$BASE" in
            "$STATE_DIR"/*) rm -rf "$BASE" ;;
        esac
    fi
    rm -f "$STATE_FILE"
}

case "${1:-}" in
    start) start ;;
    stop)
        stop_quietly
        if [ -n "${LTI_MARIADB_INSTANCE:-}" ]; then rmdir "$STATE_DIR" 2>/dev/null || true; fi
        ;;
    dsn)
        if is_running; then echo "$DSN"; else log "not running"; exit 1; fi
        ;;
    deps) deps ;;
    *)
        echo "usage: $0 start|stop|dsn|deps" >&2
        exit 2
        ;;
esac
