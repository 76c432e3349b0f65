#!/usr/bin/env bash
# deploy/build-timescaledb.sh — build and install TimescaleDB (Apache-2 edition) for PostgreSQL 15
# from Debian trixie's source package. Called by `./gw setup` when no package offers it.
#
# Why: Debian 12 has no TimescaleDB package; trixie's source package `timescaledb` (2.19.x) builds
# against PostgreSQL 15 in seconds (verified, /work/shared/ENVIRONMENT.md). A separate sources list
# and lists dir under var/apt are used so the system's own apt sources are left untouched.
#
# Env: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config); GW_APT_UPDATED=1 skips the
# system `apt-get update` when the caller already ran it.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
VAR=$(mkdir -p "$ROOT/var" && readlink -f "$ROOT/var")
APT_DIR=$VAR/apt
WORK=$VAR/build/timescaledb

log() { printf '[build-timescaledb %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ $EUID -eq 0 ]] || { log "must run as root (apt-get, make install)"; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# Build dependencies from the system's own (bookworm) sources. gcc/make come with build-essential;
# dpkg-dev gives dpkg-source to unpack the .dsc; libssl-dev for TimescaleDB's optional OpenSSL use.
install_build_deps() {
    local pkgs=(postgresql-server-dev-15 cmake dpkg-dev build-essential libssl-dev)
    local missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        if [[ -z ${GW_APT_UPDATED:-} ]]; then
            log "apt-get update"
            apt-get update -q >/dev/null
        fi
        log "apt-get install ${missing[*]}"
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    else
        log "build dependencies present"
    fi
}

# Download (not build-dep, not unpack) the trixie source package through a private apt config.
fetch_source() {
    mkdir -p "$APT_DIR/lists/partial" "$WORK"
    # signed-by: bookworm's debian-archive-keyring already carries the trixie archive keys.
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$APT_DIR/trixie-src.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$APT_DIR/trixie-src.list" -o Dir::Etc::sourceparts=/dev/null
        -o "Dir::State::Lists=$APT_DIR/lists")
    log "apt-get update (trixie deb-src only, lists in $APT_DIR/lists)"
    apt-get "${apt_opts[@]}" update -q >/dev/null
    log "apt-get source --download-only timescaledb into $WORK"
    rm -rf "$WORK"/src "$WORK"/*.dsc "$WORK"/*.tar.* "$WORK"/*.debian.*
    # apt's _apt sandbox user cannot write into a root-owned dir: allow the unsandboxed download.
    (cd "$WORK" && apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root source --download-only timescaledb >/dev/null)
    local dsc
    dsc=$(printf '%s\n' "$WORK"/timescaledb_*.dsc | sort -V | tail -n1)
    log "unpacking $(basename "$dsc")"
    # --no-check: apt already verified the files against the signed Release/Sources hashes.
    (cd "$WORK" && dpkg-source --no-check -x "$dsc" src >/dev/null)
}

build_install() {
    cd "$WORK/src"
    log "bootstrap (APACHE_ONLY, PG_CONFIG=$PG_CONFIG)"
    ./bootstrap -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$PG_CONFIG" \
        >"$WORK/bootstrap.log" 2>&1 || { tail -n 30 "$WORK/bootstrap.log" >&2; exit 1; }
    log "make -C build -j$(nproc) install (log $WORK/make.log)"
    make -C build -j"$(nproc)" install >"$WORK/make.log" 2>&1 || { tail -n 30 "$WORK/make.log" >&2; exit 1; }
    log "installed into $("$PG_CONFIG" --sharedir)/extension and $("$PG_CONFIG" --pkglibdir)"
}

install_build_deps
fetch_source
build_install
