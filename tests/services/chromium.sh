#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the browser tests (tests/browser/), installed when missing.
#
#   tests/services/chromium.sh deps
set -euo pipefail

log() { echo "chromium.sh: $*" >&2; }

deps() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "the browser tests need Debian's chromium and chromium-driver (root and apt-get to install them)"
        return 0   # the tests skip locally, and fail in CI, without them
    fi
    log "installing chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2 && return 0
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
}

case "${1:-}" in
    deps) deps ;;
    *)
        echo "usage: $0 deps" >&2
        exit 2
        ;;
esac
