#!/usr/bin/env bash
# A real Open edX LMS (edx-platform source and its virtualenv) for tests/openedx, built once and cached.
#
#   tests/openedx/lms_env.sh        # prints the environment's directory on stdout (edx-platform/, venv/)
#
# The source is ../shared/openedx/edx-platform-master-2025-09.tgz beside the repository (else
# /work/shared/openedx/..., or $LTI_OPENEDX_TARBALL). The environment lives OUTSIDE the clone, in
# ${LTI_OPENEDX_CACHE:-$HOME/.cache/lti-publish/openedx}/<key>, where <key> hashes the tarball, its
# requirements files, this script and the Python that builds it: a repeat run finds it there at once.
# It is built in builds/<key>.XXXXXX and only then published by renaming a symlink <key> onto it (atomic:
# a half-built environment is never reused: a failed build is deleted). The venv is never moved,
# so its scripts and the editable install of edx-platform keep their paths. Environments of other keys
# unused for a week are deleted after a build.
#
# Steps (each timed on stderr): system libraries (apt-get, as root, when missing), unpack, uv (pip-installed
# into a tool venv of the cache), the venv with requirements/edx/testing.txt installed --no-deps by uv (less
# its one `-e git+https://...` line; setuptools<81 for loremipsum's build), mongomock 4.3.0, edx-platform
# itself (editable, --no-deps: its setup.py declares the built-in XBlocks' entry points), test_root/log and
# test_root/uploads.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARBALL_NAME="edx-platform-master-2025-09.tgz"
CACHE_BASE="${LTI_OPENEDX_CACHE:-$HOME/.cache/lti-publish/openedx}"
UV_VERSION="0.9.30"
PRUNE_DAYS=7
SYSTEM_PACKAGES=(pkg-config default-libmysqlclient-dev libxml2-dev libxslt1-dev libxmlsec1-dev python3.11-dev)

log() { echo "lms_env: $*" >&2; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
phase() {   # phase NAME COMMAND... : runs COMMAND, then logs how long it took
    local name="$1" start
    shift
    start="$(now)"
    "$@"
    log "$name: $(took "$start") s"
}

find_tarball() {
    local candidate
    for candidate in "${LTI_OPENEDX_TARBALL:-}" "$ROOT/../shared/openedx/$TARBALL_NAME" "/work/shared/openedx/$TARBALL_NAME"; do
        if [ -n "$candidate" ] && [ -f "$candidate" ]; then
            echo "$(cd "$(dirname "$candidate")" && pwd)/$(basename "$candidate")"
            return 0
        fi
    done
    log "no $TARBALL_NAME in $ROOT/../shared/openedx/ nor /work/shared/openedx/ (set LTI_OPENEDX_TARBALL)"
    return 1
}

find_python() {
    local candidate
    for candidate in "${LTI_OPENEDX_PYTHON:-}" /usr/bin/python3.11 "$(command -v python3.11 || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    log "no python3.11 (the LMS runs on Python 3.11)"
    return 1
}

system_deps() {
    local missing=() pkg
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "missing system packages ${missing[*]} (need root and apt-get to install them)"
        return 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 && return 0
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_uv() {   # sets UV
    if [ -n "${LTI_OPENEDX_UV:-}" ]; then
        UV="$LTI_OPENEDX_UV"
        return 0
    fi
    local tools="$CACHE_BASE/tools/uv-$UV_VERSION"
    UV="$tools/bin/uv"
    [ -x "$UV" ] && return 0
    local tmp
    tmp="$(mktemp -d "$CACHE_BASE/tools/.uv.XXXXXX")"
    "$PYTHON" -m venv "$tmp" >&2
    "$tmp/bin/python" -m pip install --quiet "uv==$UV_VERSION" >&2
    # Only uv's own binary (self-contained) is kept: the venv it came in is not moved, it is deleted.
    mkdir -p "$tools/bin"
    cp "$tmp/bin/uv" "$tools/bin/.uv.$$"
    mv -f "$tools/bin/.uv.$$" "$UV"
    rm -rf "$tmp"
}

unpack() {
    tar -xzf "$TARBALL" -C "$BUILD"
    mkdir -p "$BUILD/edx-platform/test_root/log" "$BUILD/edx-platform/test_root/uploads"
}

make_venv() {
    "$UV" venv --quiet --python "$PYTHON" "$BUILD/venv"
    # pip (the per-run install of lti-publish uses it, as a site would), setuptools and wheel as edx pins them.
    "$UV" pip install --quiet --python "$BUILD/venv/bin/python" -r "$BUILD/edx-platform/requirements/pip.txt"
}

install_requirements() {
    local reqs="$BUILD/requirements-testing.txt" build_constraints="$BUILD/build-constraints.txt"
    grep -v '^-e git+' "$BUILD/edx-platform/requirements/edx/testing.txt" >"$reqs"
    echo "setuptools<81" >"$build_constraints"
    "$UV" pip install --quiet --python "$BUILD/venv/bin/python" --no-deps \
        --build-constraints "$build_constraints" -r "$reqs"
    # mongomock stands in for MongoDB (tests/openedx/conftest.py); nothing already installed may change.
    "$UV" pip install --quiet --python "$BUILD/venv/bin/python" -c "$reqs" "mongomock==4.3.0"
}

install_edx_platform() {
    "$UV" pip install --quiet --python "$BUILD/venv/bin/python" --no-deps \
        --build-constraints "$BUILD/build-constraints.txt" -e "$BUILD/edx-platform"
    "$BUILD/venv/bin/python" - <<'EOF' >&2
import importlib.metadata as md
print("lms_env: Django", md.version("Django"), "XBlock", md.version("XBlock"), "pymongo", md.version("pymongo"),
      "mongomock", md.version("mongomock"))
names = {ep.name for ep in md.entry_points(group="xblock.v1")}
assert {"html", "course", "vertical"} <= names, names
EOF
}

build() {
    mkdir -p "$CACHE_BASE/builds"
    # Leftovers of this key (a build that died half-way, or the one the link no longer names).
    local old current=""
    [ -L "$LINK" ] && current="$(readlink -f "$LINK")"
    for old in "$CACHE_BASE/builds/$KEY".*; do
        [ -e "$old" ] && [ "$(readlink -f "$old")" != "$current" ] && rm -rf "$old"
    done
    BUILD="$(mktemp -d "$CACHE_BASE/builds/$KEY.XXXXXX")"
    trap '[ -f "$BUILD/.complete" ] || rm -rf "$BUILD"' EXIT   # a failed build leaves nothing behind
    log "building $BUILD (first run: several minutes)"
    phase "system libraries" system_deps
    phase "unpack edx-platform" unpack
    mkdir -p "$CACHE_BASE/tools"
    phase "uv" ensure_uv
    phase "venv" make_venv
    phase "requirements/edx/testing.txt (uv, --no-deps)" install_requirements
    phase "edx-platform (editable)" install_edx_platform
    touch "$BUILD/.complete"
    ln -sfn "$BUILD" "$CACHE_BASE/.$KEY.link.$$"
    mv -Tf "$CACHE_BASE/.$KEY.link.$$" "$LINK"
    [ -n "$current" ] && [ "$current" != "$BUILD" ] && rm -rf "$current"
    prune_unused
    return 0
}

# Environments of other keys (an older tarball or script) unused for PRUNE_DAYS days: about 1 GB each.
prune_unused() {
    local link
    for link in "$CACHE_BASE"/*; do
        [ -L "$link" ] && [ "$link" != "$LINK" ] || continue
        if [ -z "$(find "$link/" -maxdepth 1 -name .last-used -mtime "-$PRUNE_DAYS" 2>/dev/null)" ]; then
            log "removing $link, unused for $PRUNE_DAYS days"
            rm -rf "$(readlink -f "$link")" "$link" "$link.lock"
        fi
    done
}

main() {
    local start
    start="$(now)"
    TARBALL="$(find_tarball)"
    PYTHON="$(find_python)"
    mkdir -p "$CACHE_BASE"
    KEY="$(
        {
            sha256sum "$TARBALL" | cut -d' ' -f1
            tar -xzOf "$TARBALL" edx-platform/requirements/edx/testing.txt edx-platform/requirements/pip.txt \
                | sha256sum | cut -d' ' -f1
            sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
            "$PYTHON" -c 'import sys; print(sys.version)'
        } | sha256sum | cut -c1-16
    )"
    LINK="$CACHE_BASE/$KEY"
    if [ ! -f "$LINK/.complete" ]; then
        # One build at a time per key; whoever waited finds it done.
        exec 9>"$CACHE_BASE/$KEY.lock"
        flock 9
        if [ ! -f "$LINK/.complete" ]; then
            build
        fi
        flock -u 9
        exec 9>&-
    fi
    touch "$LINK/.last-used"
    log "environment $LINK ($(readlink -f "$LINK")) ready in $(took "$start") s"
    echo "$LINK"
}

main "$@"
