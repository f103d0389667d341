#!/usr/bin/env bash
# bench.sh BUILD_DIR — `make bench`: the performance figures of the README.
# Runs tests/bench/bench.js against the binaries in BUILD_DIR/bin (make bench
# builds them optimised, without sanitizers): pass-through, tool round trip,
# streaming TTFT, registry propagation, auth cost, 1,000 held streams, the
# cost of tool events on a two-round streamed tool loop (on vs off), and the
# cost of CGI (Apache mod_cgid running aiproxy-fcgi as plain CGI, and running
# the CGI front aiproxy-cgi, vs mod_proxy_fcgi), and /mcp tools/call of echo
# through nginx versus the same call on a direct stdio session, the cost
# of observability (metrics + JSON log + tracing on vs all off), the cost
# of traces on the pass-through (OTLP export on vs off), the limiter (a
# managed key with rpm+tpm vs a static key; rpm accuracy over two stacks),
# and a simulated fleet (N hosts, two brokers, one killed midway, vs one
# host). Each figure is printed beside a baseline measured in the same run;
# the table is also written to BUILD_DIR/bench.json. Exits non-zero only if
# something errored (never on slowness). Every process it starts is stopped.
# Environment: BENCH_ONLY (comma list: pass,responses,tools,ttft,prop,auth,hold,events,cgi,mcp,obs,trace,limits,fleet,conns),
# BENCH_QUICK=1 (shorter runs), BENCH_WORKERS / BENCH_THREADS (responders of
# the pass-through stacks, default 2 / 16), BENCH_NGINX_WORKERS (default 1),
# BENCH_HOLD (held streams, default 1000), BENCH_FLEET_HOSTS (fleet hosts, default 4),
# BENCH_CONNS (held tool streams of figure 14, default 1000), BENCH_CONNS_BASE_BIN
# (a bin dir to measure figure 14 on first, as its baseline).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BUILD=${1:?usage: scripts/bench.sh BUILD_DIR}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

missing=()
for b in aiproxy-fcgi aiproxy-cgi mcp-broker mcp-demo bench-upstream bench-streams bench-tools; do
    [ -x "$BUILD/bin/$b" ] || missing+=("$BUILD/bin/$b")
done
for t in wrk node nginx redis-server; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || missing+=("$t")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench.sh: missing: ${missing[*]} (run: make deps all)" >&2
    exit 2
fi

# 1,000 held streams need 2 descriptors each in nginx and one in bench-streams
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

args=(--out "$BUILD/bench.json")
[ -n "${BENCH_ONLY:-}" ] && args+=(--only "$BENCH_ONLY")
[ "${BENCH_QUICK:-0}" = 1 ] && args+=(--quick)
AIPROXY_BIN_DIR="$BUILD/bin" exec node tests/bench/bench.js "${args[@]}"
