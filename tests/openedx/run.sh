#!/usr/bin/env bash
# The tests of lti-publish inside a real Open edX LMS (edx-platform master of 2025-09: Django 4.2, XBlock 5).
#
#   tests/openedx/run.sh [pytest args]      # exit code: pytest's (or 1 if the environment cannot be made)
#   LTI_OPENEDX_SESSIONS=cms tests/openedx/run.sh -k studio   # one session only (lms or cms)
#
# 1. tests/openedx/lms_env.sh builds the LMS's source and virtualenv once, outside the clone, and reuses it;
# 2. this checkout is built into a wheel and installed into that environment WITH the `xblock` extra and
#    dependency resolution, constrained to every version already there: the install must change neither
#    Django nor XBlock (their versions are printed before and after, and compared);
# 3. pytest runs tests/openedx with the LMS's python from its edx-platform directory (tests/openedx/pytest.ini),
#    twice: the LMS's session (lms_settings.py, test_lms_*.py), then Studio's (cms_settings.py, test_cms_*.py).
# Every phase prints how long it took. One run at a time per environment (a lock), since step 2 changes it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTEST_TIMEOUT="${LTI_OPENEDX_PYTEST_TIMEOUT:-600}"

log() { echo "openedx/run.sh: $*" >&2; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
START="$(now)"

phase_start="$(now)"
ENV_DIR="$("$HERE/lms_env.sh")"
log "LMS environment: $(took "$phase_start") s ($ENV_DIR)"
PY="$ENV_DIR/venv/bin/python"

exec 8>"$ENV_DIR/.run.lock"
if ! flock -n 8; then
    log "waiting for another run in $ENV_DIR"
    flock 8
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/lti-openedx.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

versions() {
    "$PY" -c 'import importlib.metadata as m; print("Django", m.version("Django") + ", XBlock", m.version("XBlock"))'
}

# The wheel, built from a copy of the checkout (nothing is written into the clone).
phase_start="$(now)"
mkdir -p "$WORK/src" "$WORK/dist"
tar -C "$ROOT" -cf - --exclude=./.git --exclude=./.venv --exclude=./node_modules --exclude=./var \
    --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=__pycache__ --exclude=./.hypothesis \
    --exclude=./.mypy_cache --exclude=./.ruff_cache --exclude=./tests . | tar -C "$WORK/src" -xf -
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" >&2
WHEEL="$(ls "$WORK"/dist/lti_publish-*.whl)"
log "wheel $(basename "$WHEEL"): $(took "$phase_start") s"

# Installed as a site would: pip, the xblock extra, dependencies resolved, but held to what the LMS has.
phase_start="$(now)"
BEFORE="$(versions)"
log "before installing lti-publish[xblock]: $BEFORE"
# What a site's plain `pip install "lti-publish[xblock]"` would do here (a dry run, unconstrained): it must
# leave Django and XBlock alone.
"$PY" -m pip uninstall --quiet --yes lti-publish >/dev/null 2>&1 || true
"$PY" -m pip install --quiet --disable-pip-version-check --dry-run --report "$WORK/report.json" "$WHEEL[xblock]" >&2
"$PY" - "$WORK/report.json" <<'EOF' >&2
import json, sys
wanted = [f'{i["metadata"]["name"]} {i["metadata"]["version"]}' for i in json.load(open(sys.argv[1]))["install"]]
print("openedx/run.sh: a plain pip install of lti-publish[xblock] would install:", ", ".join(wanted))
if any(w.split()[0].lower() in ("django", "xblock") for w in wanted):
    sys.exit("openedx/run.sh: ERROR: it would change the LMS's Django or XBlock")
EOF
"$PY" -m pip freeze --exclude-editable | grep -E '^[A-Za-z0-9_.-]+==' | grep -viE '^lti[-_]publish==' \
    >"$WORK/constraints.txt"
"$PY" -m pip install --quiet --disable-pip-version-check -c "$WORK/constraints.txt" "$WHEEL[xblock]" >&2
AFTER="$(versions)"
log "after installing lti-publish[xblock]:  $AFTER"
if [ "$BEFORE" != "$AFTER" ]; then
    log "ERROR: installing lti-publish[xblock] changed the LMS's Django or XBlock"
    exit 1
fi
"$PY" -m pip check >"$WORK/pip-check.txt" 2>&1 || true
if grep -i "lti-publish" "$WORK/pip-check.txt" >&2; then
    log "ERROR: lti-publish's requirements are not met in the LMS's environment"
    exit 1
fi
log "install: $(took "$phase_start") s"

# Two pytest sessions, from edx-platform/, each timed: the LMS's (lms_settings: test_lms_*.py) and Studio's
# (cms_settings: test_cms_*.py); a process loads one of them. Paths among the arguments
# (tests/openedx/test_x.py::test_y) are made absolute and go to their service's session only; other
# arguments (-k, -x...) go to both. LTI_OPENEDX_SESSIONS="lms" (or "cms") runs one session only.
SESSIONS="${LTI_OPENEDX_SESSIONS:-lms cms}"
OPTIONS=()
LMS_PATHS=()
CMS_PATHS=()
HAS_PATH=""
for arg in "$@"; do
    target="${arg%%::*}"
    if [ "${arg#-}" = "$arg" ] && [ -e "$target" ]; then
        arg="$(cd "$(dirname "$target")" && pwd)/$(basename "$target")${arg#"$target"}"
        HAS_PATH=1
        case "$(basename "$target")" in
            test_lms_*) LMS_PATHS+=("$arg") ;;
            test_cms_*) CMS_PATHS+=("$arg") ;;
            *) LMS_PATHS+=("$arg"); CMS_PATHS+=("$arg") ;;
        esac
    else
        OPTIONS+=("$arg")
    fi
done
if [ -z "$HAS_PATH" ]; then
    LMS_PATHS=("$HERE")
    CMS_PATHS=("$HERE")
fi

session() {   # session NAME SETTINGS PATHS...: one pytest session; its exit code in $rc
    local name="$1" settings_module="$2" phase_start
    shift 2
    phase_start="$(now)"
    rc=0
    (
        cd "$ENV_DIR/edx-platform"
        exec timeout --signal=TERM --kill-after=30 "$PYTEST_TIMEOUT" \
            "$PY" -m pytest -c "$HERE/pytest.ini" --rootdir "$HERE" --ds "$settings_module" \
            ${OPTIONS[@]+"${OPTIONS[@]}"} "$@"
    ) || rc=$?
    if [ "$rc" -eq 124 ]; then
        log "ERROR: the $name tests exceeded $PYTEST_TIMEOUT s"
    fi
    log "pytest $name (exit $rc): $(took "$phase_start") s"
}

# The run's exit code: the first failing session's; 5 (nothing collected) only when no session ran a test.
final=5
for name in $SESSIONS; do
    case "$name" in
        lms) [ "${#LMS_PATHS[@]}" -gt 0 ] || continue; session LMS lms_settings "${LMS_PATHS[@]}" ;;
        cms) [ "${#CMS_PATHS[@]}" -gt 0 ] || continue; session Studio cms_settings "${CMS_PATHS[@]}" ;;
        *) log "ERROR: unknown session $name in LTI_OPENEDX_SESSIONS (lms, cms)"; exit 1 ;;
    esac
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
        if [ "$final" -eq 0 ] || [ "$final" -eq 5 ]; then
            final="$rc"
        fi
    elif [ "$rc" -eq 0 ] && [ "$final" -eq 5 ]; then
        final=0
    fi
done
log "total: $(took "$START") s"
exit "$final"
