#!/usr/bin/env bash
# test.sh BUILD_DIR [unit|all|tsan] [TSAN_BUILD_DIR] — `make test`, `make unit`, `make tsan`.
# Runs every BUILD_DIR/bin/test_* (cmocka, one program per file) and the shell
# tests tests/unit/test_*.sh, then, unless `unit` is given, the node
# integration tests (tests/integration/*.test.js) against the binaries in
# BUILD_DIR/bin. `tsan` is the ThreadSanitizer run: BUILD_DIR is a
# `make SAN=thread` build; its unit programs, then only the integration files
# of the threaded responder paths (TSAN_TEST_FILES). With a TSAN_BUILD_DIR
# after `all`, that TSan run follows the first one and counts in the same
# closing line
#   tests: N passed, M failed
# counting each unit program and each node test; exits non-zero on any
# failure. Sanitizer reports fail the unit program (non-zero exit, or a
# ThreadSanitizer warning in its output) and the integration test whose stack
# logged them (lib/stack.js stop()).
# Environment: TEST_FILTER (node --test-name-pattern), NODE_TEST_FILES (a
# space-separated list of test files to run instead of all), TSAN_TEST_FILES
# (the files of the TSan run; default below).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BUILD=${1:?usage: scripts/test.sh BUILD_DIR [unit|all|tsan] [TSAN_BUILD_DIR]}
MODE=${2:-all}
TSAN_BUILD=${3:-}
case "$MODE" in unit|all|tsan) ;; *) echo "test.sh: unknown mode '$MODE' (unit, all, tsan)" >&2; exit 2 ;; esac
abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
BUILD=$(abs "$BUILD")
[ -n "$TSAN_BUILD" ] && TSAN_BUILD=$(abs "$TSAN_BUILD")

# The integration files of the TSan run: the multi-threaded responder paths
# (concurrent chats and streams, tool calls through the broker, admin writes,
# SIGHUP log re-open in tsan.test.js; auth caches, Redis faults, the Anthropic
# backend, /v1/messages; the limiter and the key cache). Not the web-server matrix nor the MCP transport
# suites (broker-side, single-threaded), nor hostile (its slow-client and
# saturation scenarios measure the ASan build). Keep it well under 3 minutes.
TSAN_TEST_FILES=${TSAN_TEST_FILES:-$(printf 'tests/integration/%s.test.js ' \
    skeleton streaming broker admin tsan auth redis_faults honest anthropic messages limits keys)}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}
# halt_on_error=0: report every race of a run, not just the first; the
# warnings (and TSan's exit code 66) still fail the test.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp}

passed=0
failed=0
failures=()

# run_units BIN LABEL: every cmocka program in BIN (and the shell tests once,
# with the first build), one count each.
run_units() {
    local bin=$1 label=$2 t name out rc
    local -a units
    shopt -s nullglob
    units=("$bin"/test_*)
    [ "$label" = unit ] && units+=("$ROOT"/tests/unit/test_*.sh)
    shopt -u nullglob
    if [ "${#units[@]}" -eq 0 ]; then
        echo "test.sh: no unit test programs in $bin"
    fi
    out=$(mktemp /tmp/aiproxy-unit.XXXXXX)
    for t in "${units[@]}"; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        echo "=== $label: $name"
        "$t" 2>&1 | tee "$out"
        rc=${PIPESTATUS[0]}
        if [ "$rc" -eq 0 ] && ! grep -q 'WARNING: ThreadSanitizer' "$out"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            failures+=("$label $name")
        fi
    done
    rm -f "$out"
}

# run_node BIN LABEL FILE...: the node integration tests against BIN's daemons.
run_node() {
    local bin=$1 label=$2 out node_rc np nf nc
    shift 2
    if [ "$#" -eq 0 ]; then
        echo "test.sh: no integration tests found"
        return
    fi
    out=$(mktemp /tmp/aiproxy-node-tests.XXXXXX)
    local -a args=(--test --test-concurrency=2 --test-timeout=300000
                   --test-reporter=spec --test-reporter-destination=stdout)
    [ -n "${TEST_FILTER:-}" ] && args+=(--test-name-pattern="$TEST_FILTER")
    AIPROXY_BIN_DIR="$bin" node "${args[@]}" "$@" 2>&1 | tee "$out"
    node_rc=${PIPESTATUS[0]}
    np=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out" | tail -1)
    nf=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out" | tail -1)
    nc=$(sed -n 's/^ℹ cancelled \([0-9]*\)$/\1/p' "$out" | tail -1)
    np=${np:-0}; nf=${nf:-0}; nc=${nc:-0}
    passed=$((passed + np))
    failed=$((failed + nf + nc))
    [ $((nf + nc)) -gt 0 ] && failures+=("$((nf + nc)) $label test(s)")
    # A runner that failed without counting a failure (crash, bad flag).
    if [ "$node_rc" -ne 0 ] && [ $((nf + nc)) -eq 0 ]; then
        failed=$((failed + 1))
        failures+=("node --test ($label) exited $node_rc")
    fi
    rm -f "$out"
}

# node_ready: the node dependencies are there (counts a failure if not).
node_ready() {
    if scripts/deps.sh node; then
        return 0
    fi
    echo "test.sh: node dependencies missing (see above)" >&2
    failed=$((failed + 1))
    failures+=("deps.sh node")
    return 1
}

# run_tsan BUILD: the ThreadSanitizer run (unit programs, then TSAN_TEST_FILES).
run_tsan() {
    local bin=$1/bin
    local -a files
    echo "=== ThreadSanitizer run: $bin"
    # gcc 12's TSan dies at start when the kernel randomises mmap with more
    # than 28 bits (docs/checks.md): lower it when we may (root), else say so.
    local bits
    bits=$(sysctl -n vm.mmap_rnd_bits 2>/dev/null || echo 0)
    if [ "${bits:-0}" -gt 28 ] 2>/dev/null; then
        if sysctl -qw vm.mmap_rnd_bits=28 2>/dev/null; then
            echo "test.sh: vm.mmap_rnd_bits was $bits; set to 28 for ThreadSanitizer"
        else
            echo "test.sh: vm.mmap_rnd_bits is $bits and cannot be lowered: TSan binaries will not start" >&2
        fi
    fi
    run_units "$bin" tsan-unit
    if node_ready; then
        read -r -a files <<< "$TSAN_TEST_FILES"
        run_node "$bin" tsan-integration "${files[@]}"
    fi
}

if [ "$MODE" = tsan ]; then
    run_tsan "$BUILD"
else
    run_units "$BUILD/bin" unit
    if [ "$MODE" = all ] && node_ready; then
        if [ -n "${NODE_TEST_FILES:-}" ]; then
            read -r -a files <<< "$NODE_TEST_FILES"
        else
            mapfile -t files < <(find tests/integration -name '*.test.js' -not -path '*/node_modules/*' | sort)
        fi
        run_node "$BUILD/bin" integration "${files[@]}"
    fi
    [ "$MODE" = all ] && [ -n "$TSAN_BUILD" ] && run_tsan "$TSAN_BUILD"
fi

echo
[ "${#failures[@]}" -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
