#!/usr/bin/env bash
# test.sh BUILD_DIR [unit] — `make test` / `make unit`.
# Runs every BUILD_DIR/bin/test_* (cmocka, one program per file), then, unless
# `unit` is given, the node integration tests (tests/integration/*.test.js)
# against the binaries in BUILD_DIR/bin. Closes with the line
#   tests: N passed, M failed
# counting each unit program and each node test, and exits non-zero on any
# failure. Sanitizer reports fail the unit program (non-zero exit) and the
# integration test whose stack logged them (lib/stack.js stop()).
# Environment: TEST_FILTER (node --test-name-pattern), NODE_TEST_FILES (a
# space-separated list of test files to run instead of all).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BUILD=${1:?usage: scripts/test.sh BUILD_DIR [unit]}
MODE=${2:-all}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}
export AIPROXY_BIN_DIR="$BIN"

passed=0
failed=0
failures=()

shopt -s nullglob
units=("$BIN"/test_*)
shopt -u nullglob
if [ "${#units[@]}" -eq 0 ]; then
    echo "test.sh: no unit test programs in $BIN"
fi
for t in "${units[@]}"; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    echo "=== unit: $name"
    if "$t"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("unit $name")
    fi
done

if [ "$MODE" != unit ]; then
    if ! scripts/deps.sh node; then
        echo "test.sh: node dependencies missing (see above)" >&2
        failed=$((failed + 1))
        failures+=("deps.sh node")
    else
        if [ -n "${NODE_TEST_FILES:-}" ]; then
            read -r -a files <<< "$NODE_TEST_FILES"
        else
            mapfile -t files < <(find tests/integration -name '*.test.js' -not -path '*/node_modules/*' | sort)
        fi
        if [ "${#files[@]}" -eq 0 ]; then
            echo "test.sh: no integration tests found"
        else
            out=$(mktemp /tmp/aiproxy-node-tests.XXXXXX)
            args=(--test --test-concurrency=2 --test-timeout=300000
                  --test-reporter=spec --test-reporter-destination=stdout)
            [ -n "${TEST_FILTER:-}" ] && args+=(--test-name-pattern="$TEST_FILTER")
            node "${args[@]}" "${files[@]}" 2>&1 | tee "$out"
            node_rc=${PIPESTATUS[0]}
            np=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out" | tail -1)
            nf=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out" | tail -1)
            nc=$(sed -n 's/^ℹ cancelled \([0-9]*\)$/\1/p' "$out" | tail -1)
            np=${np:-0}; nf=${nf:-0}; nc=${nc:-0}
            passed=$((passed + np))
            failed=$((failed + nf + nc))
            [ $((nf + nc)) -gt 0 ] && failures+=("$((nf + nc)) integration test(s)")
            # A runner that failed without counting a failure (crash, bad flag).
            if [ "$node_rc" -ne 0 ] && [ $((nf + nc)) -eq 0 ]; then
                failed=$((failed + 1))
                failures+=("node --test exited $node_rc")
            fi
            rm -f "$out"
        fi
    fi
fi

echo
[ "${#failures[@]}" -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
