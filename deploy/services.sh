# shellcheck shell=bash
# deploy/services.sh — functions behind `./gw setup`, `./gw stop` and `./gw status`.
#
# Sourced by ./gw (which sets GW_ROOT and `set -euo pipefail`); defines functions only.
#
# Rules this file follows (see /work/shared/ENVIRONMENT.md):
#   * A service already listening on its port is REUSED, never restarted or reconfigured:
#     development and CI machines run PostgreSQL :5432, Redis :6379 and Mosquitto :1883 of their own.
#   * What the project needs configured its own way (PostgreSQL with TimescaleDB preloaded,
#     Mosquitto with queues sized for no loss) runs as a project-local instance on another
#     port (5433, 1884) with data under var/, and is stopped by its PID file, never by name.
#   * apt-get update runs at most once per setup, and only when something must be installed.

GW_PG_VERSION=15
GW_PG_BIN=/usr/lib/postgresql/${GW_PG_VERSION}/bin
GW_PG_PORT=${GW_PG_PORT:-5433}
GW_PG_DB=gridwatch
GW_REDIS_PORT=6379
GW_MQTT_PORT=${GW_MQTT_PORT:-1884}
GW_TSDB_CONTROL=/usr/share/postgresql/${GW_PG_VERSION}/extension/timescaledb.control

# Alternate ports (e.g. GW_PG_PORT=5533 GW_MQTT_PORT=1984 for a second, isolated stack) flow into
# the Python processes' settings, unless those are set explicitly.
[[ $GW_PG_PORT == 5433 ]] || export GRIDWATCH_PG_DSN=${GRIDWATCH_PG_DSN:-postgresql://postgres@127.0.0.1:$GW_PG_PORT/$GW_PG_DB}
[[ $GW_MQTT_PORT == 1884 ]] || export GRIDWATCH_MQTT_PORT=${GRIDWATCH_MQTT_PORT:-$GW_MQTT_PORT}

GW_SUMMARY=()   # one line per service: what setup found or did

# ---------------------------------------------------------------- logging ---

log() { printf '[gw %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
summary() { GW_SUMMARY+=("$(printf '%-12s %-18s %s' "$1" "$2" "$3")"); }

print_summary() {
    log "summary:"
    local line
    for line in "${GW_SUMMARY[@]}"; do printf '    %s\n' "$line" >&2; done
}

# ------------------------------------------------------------------ probes ---

# port_open HOST PORT: is something accepting TCP connections there? (bash's /dev/tcp: no extra tools)
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# wait_port HOST PORT SECONDS: wait until the port accepts connections.
wait_port() {
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        port_open "$1" "$2" && return 0
        sleep 0.2
    done
    return 1
}

# pid_alive PIDFILE COMM: the PID in PIDFILE runs and its command name starts with COMM.
# Checking the name guards against a recycled PID after a reboot or crash.
pid_alive() {
    local pidfile=$1 comm=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(head -n1 "$pidfile" | tr -dc 0-9)
    [[ -n $pid && -r /proc/$pid/comm ]] || return 1
    [[ $(cat "/proc/$pid/comm") == "$comm"* ]]
}

# ------------------------------------------------------------------- apt ---

need_root() {
    [[ $EUID -eq 0 ]] || die "$1 needs root (run ./gw setup as root, or install it yourself)"
}

# apt_update_once: `apt-get update` the first time something must be installed, not before.
# GW_APT_UPDATED is exported so deploy/build-timescaledb.sh does not update again.
apt_update_once() {
    [[ -n ${GW_APT_UPDATED:-} ]] && return 0
    need_root "apt-get"
    log "apt-get update (something must be installed)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    export GW_APT_UPDATED=1
}

# apt_install PKG...: non-interactive (CI has no stdin), no recommends (keeps a server lean).
apt_install() {
    apt_update_once
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# apt_has_candidate PKG: does some configured apt source offer PKG?
apt_has_candidate() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $cand && $cand != "(none)" ]]
}

# ------------------------------------------------------------ runtime dir ---

# path_traversable DIR: can any user (postgres, mosquitto) walk down to DIR? Needs o+x on every
# parent. True for /work/... and /tmp/...; false for a clone under /root (mode 700).
path_traversable() {
    local d
    d=$(readlink -f "$1")
    while [[ $d != / ]]; do
        # Octal mode's last digit = "other" bits; 1 = x. (Not %A: /tmp shows "t" for x+sticky.)
        (($(stat -c %a "$d") % 10 & 1)) || return 1
        d=$(dirname "$d")
    done
}

# resolve_var: set GW_VAR to the absolute runtime directory ($GW_ROOT/var, gitignored).
# If the postgres/mosquitto users cannot reach the repo (e.g. it lives in /root), var/ becomes a
# symlink to /var/lib/gridwatch/<name>-<hash> instead of loosening permissions on the user's home.
resolve_var() {
    if [[ ! -e $GW_ROOT/var ]]; then
        if path_traversable "$GW_ROOT"; then
            mkdir -p "$GW_ROOT/var"
        else
            local alt
            alt=/var/lib/gridwatch/$(basename "$GW_ROOT")-$(printf '%s' "$GW_ROOT" | sha1sum | cut -c1-10)
            log "$GW_ROOT is not traversable by service users: runtime data goes to $alt (var -> symlink)"
            mkdir -p "$alt"
            ln -s "$alt" "$GW_ROOT/var"
        fi
    fi
    GW_VAR=$(readlink -f "$GW_ROOT/var")
    mkdir -p "$GW_VAR/log" "$GW_VAR/run" "$GW_VAR/mosquitto"
    # var/run holds PID files and PostgreSQL's socket, written by root, postgres and mosquitto
    # (mosquitto removes its PID file after dropping privileges): sticky and world-writable like /tmp.
    chmod 1777 "$GW_VAR/run"
}

# ------------------------------------------------------------------ steps ---

# Python virtualenv with requirements.txt; pip is skipped while the file's hash is unchanged.
ensure_venv() {
    local py=${GW_PYTHON:-python3} venv=$GW_ROOT/.venv stamp sha
    if ! command -v "$py" >/dev/null; then
        apt_install python3 python3-venv
        py=python3
    fi
    # A venv copied from another machine or left half-made points at a missing interpreter.
    if [[ -d $venv ]] && ! "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
        log "venv: $venv is broken (no working python/pip): recreating"
        rm -rf "$venv"
    fi
    if [[ ! -d $venv ]]; then
        log "venv: creating $venv with $py"
        if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
            # Debian's python3 lacks ensurepip until python3-venv is installed.
            rm -rf "$venv"
            apt_install python3-venv
            "$py" -m venv "$venv"
        fi
    fi
    stamp=$venv/.requirements.sha256
    sha=$(sha256sum "$GW_ROOT/requirements.txt" | cut -d' ' -f1)
    if [[ -f $stamp && $(cat "$stamp") == "$sha" ]]; then
        log "venv: requirements.txt unchanged (sha256 ${sha:0:12}): pip skipped"
        summary venv "$venv" "reused (requirements unchanged)"
    else
        log "venv: pip install -r requirements.txt"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$GW_ROOT/requirements.txt"
        echo "$sha" >"$stamp"
        summary venv "$venv" "pip installed requirements.txt"
    fi
}

# Redis: live state only (nothing on disk, see ENVIRONMENT.md), so one on :6379 is reused as is.
ensure_redis() {
    if port_open 127.0.0.1 $GW_REDIS_PORT; then
        log "redis: already listening on 127.0.0.1:$GW_REDIS_PORT: reusing"
        summary redis "127.0.0.1:$GW_REDIS_PORT" "reused (already listening)"
        return
    fi
    if ! command -v redis-server >/dev/null; then
        apt_install redis-server
        # On a systemd host the package starts its own server: use it rather than start a second.
        if wait_port 127.0.0.1 $GW_REDIS_PORT 3; then
            summary redis "127.0.0.1:$GW_REDIS_PORT" "reused (started by the redis-server package)"
            return
        fi
    fi
    log "redis: starting redis-server on 127.0.0.1:$GW_REDIS_PORT (no persistence)"
    # --save "" / --appendonly no: Redis is never the record; ingest rebuilds it from PostgreSQL.
    redis-server --daemonize yes --bind 127.0.0.1 --port $GW_REDIS_PORT --save "" --appendonly no \
        --pidfile "$GW_VAR/run/redis.pid" --logfile "$GW_VAR/log/redis.log" --dir "$GW_VAR/run"
    wait_port 127.0.0.1 $GW_REDIS_PORT 10 || die "redis did not start: see $GW_VAR/log/redis.log"
    summary redis "127.0.0.1:$GW_REDIS_PORT" "started (pid $(cat "$GW_VAR/run/redis.pid"))"
}

# PostgreSQL 15 server binaries. The distro's own cluster (if the package makes one) is not used.
ensure_pg_binaries() {
    if [[ -x $GW_PG_BIN/initdb ]]; then
        log "postgresql: $GW_PG_BIN present"
        return
    fi
    apt_install postgresql-$GW_PG_VERSION postgresql-client-$GW_PG_VERSION
}

# TimescaleDB for PostgreSQL 15: a package if apt offers one, else built from Debian trixie's source.
ensure_timescaledb() {
    if [[ -f $GW_TSDB_CONTROL ]]; then
        log "timescaledb: $GW_TSDB_CONTROL present"
        summary timescaledb "pg $GW_PG_VERSION" "reused (already installed)"
        return
    fi
    apt_update_once
    local pkg
    # Timescale's own repository (Timescale License) or a distro that packages it for PG 15.
    for pkg in timescaledb-2-postgresql-$GW_PG_VERSION postgresql-$GW_PG_VERSION-timescaledb; do
        if apt_has_candidate "$pkg"; then
            apt_install "$pkg"
            summary timescaledb "pg $GW_PG_VERSION" "installed package $pkg"
            return
        fi
    done
    log "timescaledb: no package for PostgreSQL $GW_PG_VERSION: building Debian trixie's source"
    bash "$GW_ROOT/deploy/build-timescaledb.sh"
    [[ -f $GW_TSDB_CONTROL ]] || die "timescaledb build did not install $GW_TSDB_CONTROL"
    summary timescaledb "pg $GW_PG_VERSION" "built from Debian trixie source (Apache-2 edition)"
}

# psql against the project cluster over TCP (trust auth for 127.0.0.1).
gw_psql() {
    "$GW_PG_BIN/psql" -X -q -h 127.0.0.1 -p "$GW_PG_PORT" -U postgres "$@"
}

# Project-local cluster: var/pg, port 5433, socket in var/run, TimescaleDB preloaded.
ensure_pg_cluster() {
    local data=$GW_VAR/pg conf
    if port_open 127.0.0.1 "$GW_PG_PORT"; then
        log "postgresql: already listening on 127.0.0.1:$GW_PG_PORT: reusing"
        # Something else on 5433 (e.g. a distro cluster that picked the next free port) would
        # silently lack TimescaleDB: refuse rather than migrate into the wrong server.
        local preload
        preload=$(gw_psql -d postgres -Atc "SHOW shared_preload_libraries") ||
            die "cannot connect to 127.0.0.1:$GW_PG_PORT as postgres (trust auth expected)"
        [[ $preload == *timescaledb* ]] ||
            die "the server on :$GW_PG_PORT does not preload timescaledb (shared_preload_libraries='$preload'); is it another cluster?"
        summary postgresql "127.0.0.1:$GW_PG_PORT" "reused (already listening, timescaledb preloaded)"
    else
        id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (is postgresql-$GW_PG_VERSION installed?)"
        if [[ ! -s $data/PG_VERSION ]]; then
            log "postgresql: initdb $data"
            install -d -o postgres -g postgres -m 700 "$data"
            # trust for local socket and 127.0.0.1: a developer/CI cluster bound to loopback only.
            (cd / && runuser -u postgres -- "$GW_PG_BIN/initdb" -D "$data" -U postgres \
                --auth-local=trust --auth-host=trust -E UTF8 --locale=C.UTF-8 >/dev/null)
        else
            log "postgresql: reusing data directory $data"
        fi
        # Ownership may be wrong after a copy or restore; postgres refuses a data dir it doesn't own.
        [[ $(stat -c %U "$data") == postgres ]] || chown -R postgres:postgres "$data"
        # Settings live in gridwatch.conf inside the data dir (refreshed from deploy/ on each start),
        # included from postgresql.conf, so a plain `pg_ctl start` gets the same server.
        conf=$data/gridwatch.conf
        {
            echo "# Generated by ./gw setup from deploy/postgres/gridwatch.conf: edit that file instead."
            echo "port = $GW_PG_PORT"
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$GW_VAR/run'"
            cat "$GW_ROOT/deploy/postgres/gridwatch.conf"
        } >"$conf"
        chown postgres:postgres "$conf"
        grep -q "^include_if_exists = 'gridwatch.conf'" "$data/postgresql.conf" ||
            echo "include_if_exists = 'gridwatch.conf'" >>"$data/postgresql.conf"
        touch "$GW_VAR/log/postgresql.log"
        chown postgres "$GW_VAR/log/postgresql.log"
        log "postgresql: starting on 127.0.0.1:$GW_PG_PORT (log $GW_VAR/log/postgresql.log)"
        (cd / && runuser -u postgres -- "$GW_PG_BIN/pg_ctl" -D "$data" -l "$GW_VAR/log/postgresql.log" \
            -w -t 60 start >/dev/null) || { tail -n 20 "$GW_VAR/log/postgresql.log" >&2; die "postgresql did not start"; }
        head -n1 "$data/postmaster.pid" >"$GW_VAR/run/postgres.pid"
        summary postgresql "127.0.0.1:$GW_PG_PORT" "started (pid $(cat "$GW_VAR/run/postgres.pid"), data $data)"
    fi
    if [[ $(gw_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$GW_PG_DB'") != 1 ]]; then
        log "postgresql: creating database $GW_PG_DB"
        gw_psql -d postgres -c "CREATE DATABASE $GW_PG_DB"
    fi
}

# Project-local Mosquitto on 127.0.0.1:1884 with deploy/mosquitto/gridwatch.conf (queues sized for
# no loss; the machine's broker on :1883 keeps Mosquitto's defaults, which drop QoS 1 messages),
# accounts and ACLs by the dynamic-security plugin (no anonymous clients; see broker/).
ensure_mosquitto() {
    local mdir=$GW_VAR/mosquitto conf new
    if ! command -v mosquitto >/dev/null && [[ ! -x /usr/sbin/mosquitto ]]; then
        apt_install mosquitto mosquitto-clients
    elif ! command -v mosquitto_pub >/dev/null; then
        apt_install mosquitto-clients
    fi
    conf=$mdir/gridwatch.conf
    new=$mdir/gridwatch.conf.new
    # The template's placeholders filled (and the TLS listener added if GRIDWATCH_MQTT_TLS_PORT is set).
    gw_broker render-conf --var "$GW_VAR" --port "$GW_MQTT_PORT" --owner mosquitto >"$new" ||
        die "mosquitto: could not render $new"
    if port_open 127.0.0.1 "$GW_MQTT_PORT"; then
        # A broker this checkout started with another configuration (e.g. the old anonymous one)
        # is restarted; one somebody else started is reused as it is, never touched.
        if pid_alive "$GW_VAR/run/mosquitto.pid" mosquitto && ! cmp -s "$new" "$conf"; then
            log "mosquitto: this checkout's broker on :$GW_MQTT_PORT runs an older configuration: restarting it"
            stop_pidfile mosquitto "$GW_VAR/run/mosquitto.pid" mosquitto
        else
            rm -f "$new"
            log "mosquitto: already listening on 127.0.0.1:$GW_MQTT_PORT: reusing"
            gw_broker check >/dev/null 2>&1 || adopt_broker_secrets
            broker_check "reused (already listening)"
            return
        fi
    fi
    # Debian's mosquitto expects /run/mosquitto to exist even with a config of our own.
    install -d -o mosquitto -m 755 /run/mosquitto
    # The broker drops to user mosquitto: it must own its persistence dir, account file and log file.
    chown mosquitto "$mdir"
    touch "$GW_VAR/log/mosquitto.log"
    chown mosquitto "$GW_VAR/log/mosquitto.log"
    local accounts_out
    accounts_out=$(gw_broker init-accounts --var "$GW_VAR" --owner mosquitto) || die "mosquitto: accounts not written"
    log "mosquitto: $accounts_out"
    mv "$new" "$conf"
    log "mosquitto: starting on 127.0.0.1:$GW_MQTT_PORT with $conf"
    rm -f "$GW_VAR/run/mosquitto.pid"
    (cd / && "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -d -c "$conf")
    wait_port 127.0.0.1 "$GW_MQTT_PORT" 10 || { tail -n 20 "$GW_VAR/log/mosquitto.log" >&2; die "mosquitto did not start"; }
    broker_check "started (pid $(cat "$GW_VAR/run/mosquitto.pid" 2>/dev/null || echo ?), config $conf)"
}

# gw_broker ARGS: python -m broker in the checkout (relative var/ paths in Settings resolve there).
gw_broker() {
    (cd "$GW_ROOT" && "$GW_ROOT/.venv/bin/python" -m broker "$@")
}

# adopt_broker_secrets: the broker on the port was started by another checkout on this machine
# (e.g. the main clone, while this is a git worktree): link that checkout's secrets file, found
# through the broker's own command line (-c <var>/mosquitto/gridwatch.conf), so this checkout's
# tests and processes log in to it. Only when this checkout has no secrets of its own.
adopt_broker_secrets() {
    local pid conf other ours=$GW_VAR/secrets/mqtt.json
    [[ -e $ours ]] && return 0
    pid=$(ss -Hltnp "sport = :$GW_MQTT_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
    conf=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-c$/{n;p;q}')
    other=$(dirname "$(dirname "$conf")")/secrets/mqtt.json
    [[ $conf == /* && -r $other ]] || return 0
    mkdir -p "$GW_VAR/secrets"
    chmod 700 "$GW_VAR/secrets"
    ln -s "$other" "$ours"
    log "mosquitto: the broker on :$GW_MQTT_PORT belongs to $(dirname "$(dirname "$(dirname "$conf")")"): using its secrets ($ours -> $other)"
}

# broker_check WHAT: the admin account from this checkout's secrets manages the broker, or stop.
broker_check() {
    local out
    if ! out=$(gw_broker check 2>&1); then
        printf '%s\n' "$out" >&2
        die "mosquitto on :$GW_MQTT_PORT does not accept this checkout's accounts. If another checkout started it, point GRIDWATCH_MQTT_SECRETS_FILE at that checkout's var/secrets/mqtt.json; if it is an old anonymous broker, stop it from the checkout that started it and run ./gw setup again"
    fi
    summary mosquitto "127.0.0.1:$GW_MQTT_PORT" "$1; $out"
}

# Debian's Chromium, driven by playwright in the browser tests (no browser download possible).
ensure_chromium() {
    # The wall's Chinese labels need a CJK font, or screenshots show boxes.
    if [[ -x /usr/bin/chromium && -d /usr/share/fonts/opentype/noto ]]; then
        log "chromium: /usr/bin/chromium present"
        summary chromium /usr/bin/chromium "reused"
        return
    fi
    # fonts-liberation: pages render text in screenshots without any web font.
    apt_install chromium fonts-liberation fonts-noto-cjk
    summary chromium /usr/bin/chromium "installed"
}

# The platform's Ed25519 order-signing key pair (orders/): made once, never replaced by setup.
# The private key (mode 0600, in a 0700 directory) stays on the dispatcher's host; the public
# key (var/keys/order_signing.pub.pem, or GRIDWATCH_ORDER_PUBLIC_KEY) is provisioned to terminals.
ensure_order_keys() {
    mkdir -p "$GW_VAR/keys"
    chmod 700 "$GW_VAR/keys"
    local out
    if out=$(cd "$GW_ROOT" && "$GW_ROOT/.venv/bin/python" -m orders keygen --if-missing 2>&1); then
        log "order keys: $out"
        summary "order keys" "$GW_VAR/keys" "${out%%:*}"
    else
        die "order keys: $out"
    fi
}

# ------------------------------------------------------------- commands ---

gw_setup() {
    [[ -f $GW_ROOT/requirements.txt ]] || die "no requirements.txt in $GW_ROOT"
    log "setup in $GW_ROOT"
    resolve_var
    ensure_venv
    ensure_redis
    ensure_pg_binaries
    ensure_timescaledb
    ensure_pg_cluster
    ensure_mosquitto
    ensure_chromium
    ensure_order_keys
    print_summary
    log "env: GRIDWATCH_PG_DSN=postgresql://postgres@127.0.0.1:$GW_PG_PORT/$GW_PG_DB" \
        "GRIDWATCH_REDIS_URL=redis://127.0.0.1:$GW_REDIS_PORT/0 GRIDWATCH_MQTT_PORT=$GW_MQTT_PORT"
}

# services_up: the ports the project uses all answer, and the venv matches requirements.txt.
services_up() {
    local p
    for p in "$GW_PG_PORT" "$GW_REDIS_PORT" "$GW_MQTT_PORT"; do
        port_open 127.0.0.1 "$p" || return 1
    done
    [[ -f $GW_ROOT/.venv/.requirements.sha256 ]] &&
        [[ $(cat "$GW_ROOT/.venv/.requirements.sha256") == $(sha256sum "$GW_ROOT/requirements.txt" | cut -d' ' -f1) ]]
}

# stop_pidfile NAME PIDFILE COMM: SIGTERM the process and wait for it (up to 30 s).
stop_pidfile() {
    local name=$1 pidfile=$2 comm=$3 pid i
    if ! pid_alive "$pidfile" "$comm"; then
        [[ -e $pidfile ]] && { log "$name: stale PID file $pidfile removed"; rm -f "$pidfile"; }
        return 0
    fi
    pid=$(head -n1 "$pidfile" | tr -dc 0-9)
    log "$name: stopping pid $pid"
    kill -TERM "$pid"
    for ((i = 0; i < 150; i++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.2
    done
    [[ -d /proc/$pid ]] && die "$name (pid $pid) did not stop within 30 s"
    rm -f "$pidfile"
    summary "$name" "pid $pid" "stopped"
}

# Stops only what this checkout started (PID files in var/run); reused services are left alone.
gw_stop() {
    [[ -e $GW_ROOT/var ]] || { log "nothing to stop (no var/)"; return 0; }
    GW_VAR=$(readlink -f "$GW_ROOT/var")
    stop_pidfile mosquitto "$GW_VAR/run/mosquitto.pid" mosquitto
    if pid_alive "$GW_VAR/run/postgres.pid" postgres; then
        log "postgresql: pg_ctl stop -m fast ($GW_VAR/pg)"
        (cd / && runuser -u postgres -- "$GW_PG_BIN/pg_ctl" -D "$GW_VAR/pg" -m fast -w stop >/dev/null)
        summary postgresql "pid $(cat "$GW_VAR/run/postgres.pid")" "stopped"
        rm -f "$GW_VAR/run/postgres.pid"
    else
        rm -f "$GW_VAR/run/postgres.pid"
    fi
    stop_pidfile redis "$GW_VAR/run/redis.pid" redis-server
    if ((${#GW_SUMMARY[@]})); then
        print_summary
    else
        log "nothing was running from this checkout"
    fi
}

gw_status() {
    local name port rc=0
    for name in postgresql:$GW_PG_PORT redis:$GW_REDIS_PORT mosquitto:$GW_MQTT_PORT; do
        port=${name#*:}
        if port_open 127.0.0.1 "$port"; then
            printf '%-12s 127.0.0.1:%-6s up\n' "${name%%:*}" "$port"
        else
            printf '%-12s 127.0.0.1:%-6s DOWN\n' "${name%%:*}" "$port"
            rc=1
        fi
    done
    return $rc
}
