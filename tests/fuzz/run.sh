#!/usr/bin/env bash
# run.sh BUILD SECONDS TARGET... — runs each libFuzzer target for SECONDS,
# one after the other (the machine has 2 cores), and prints one line each.
#
# Each target first replays tests/fuzz/corpus/<name>/ (the seeds and every
# reproducer found so far), then mutates for the rest of its time. New inputs
# go to BUILD/corpus/<name>/, never into the repository. A crash, a leak, a
# sanitizer report or an input that runs longer than FUZZ_TIMEOUT seconds
# fails the run; the log and the input that did it stay under BUILD/.
# FUZZ_REPLAY=1: only replay tests/fuzz/corpus/<name>/ (every reproducer found
# so far) and stop: what `make test` runs, so a fixed crash stays fixed.
set -u
build=$1 secs=$2
shift 2
timeout_s=${FUZZ_TIMEOUT:-10}
here=$(cd "$(dirname "$0")" && pwd)
failed=0

for t in "$@"; do
    name=${t#fuzz_}
    seeds=$here/corpus/$name
    work=$build/corpus/$name
    art=$build/artifacts/$name
    log=$build/log/$name.log
    mkdir -p "$work" "$art" "$build/log" "$seeds"
    if [ "${FUZZ_REPLAY:-0}" = 1 ]; then
        "$build/bin/$t" -runs=0 -timeout="$timeout_s" -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$art/" "$seeds" >"$log" 2>&1
    else
        "$build/bin/$t" -max_total_time="$secs" -timeout="$timeout_s" -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1
    fi
    rc=$?
    runs=$(LC_ALL=C sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -a -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        printf '%-20s ok      %s runs, %s, %s seeds\n' "$t" "${runs:-?}" "${cov:-cov: ?}" \
            "$(ls "$seeds" | wc -l)"
    else
        failed=1
        what=$(grep -a -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer)[^(]*|runtime error:.*|SUMMARY:.*' "$log" | head -n 1)
        printf '%-20s FAILED  %s (log %s, input in %s)\n' "$t" "${what:-exit $rc}" "$log" "$art"
    fi
done
exit $failed
