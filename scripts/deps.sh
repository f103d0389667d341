#!/usr/bin/env bash
# deps.sh [node] — make sure this Debian 12 machine has what aiproxy needs to
# build, run and test. Idempotent: a no-op when everything is there.
#   - Debian packages, checked with dpkg-query; missing ones are installed
#     with apt-get when root, otherwise the exact command is printed and we fail.
#   - Node: any node >= 18 already on PATH (with npm) is used as is; Debian's
#     nodejs/npm are installed only when there is none.
#   - With the argument `node` (the test targets): `npm ci` in tests/ when
#     tests/node_modules is missing or older than tests/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

want_node=0
for a in "$@"; do
    case "$a" in
        node) want_node=1 ;;
        *) echo "deps.sh: unknown argument '$a' (expected: node)" >&2; exit 2 ;;
    esac
done

pkgs=(build-essential pkg-config libfcgi-dev libfcgi-bin libjson-c-dev libcurl4-openssl-dev libssl-dev
      libyaml-dev libhiredis-dev libuv1-dev libcmocka-dev redis-server redis-sentinel apache2 libapache2-mod-fcgid
      lighttpd curl
      wrk procps
      clang libclang-rt-14-dev)   # the fuzz targets (make fuzz; make test replays their corpus)

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

missing=()
for p in "${pkgs[@]}"; do
    installed "$p" || missing+=("$p")
done

# Any Debian nginx flavour will do; nginx-light is the smallest.
nginx_ok=0
for p in nginx-light nginx nginx-core nginx-full nginx-extras; do
    if installed "$p"; then nginx_ok=1; break; fi
done
[ "$nginx_ok" = 1 ] || missing+=(nginx-light)

# Node >= 18 with npm (the integration tests and the openai client need it).
node_ok=0
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "${major:-0}" -ge 18 ] 2>/dev/null; then node_ok=1; fi
fi
[ "$node_ok" = 1 ] || missing+=(nodejs npm)

if [ "${#missing[@]}" -gt 0 ]; then
    cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
        echo "deps.sh: installing ${missing[*]}"
        # nginx, apache2 and lighttpd start system services when installed, and
        # two of them then fight over port 80, which can fail the install. aiproxy
        # runs its own instances (make run, the tests), so for this install only
        # the packages are told not to start daemons (policy-rc.d, exit 101).
        policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
            trap 'rm -f "$policy"' EXIT
        fi
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
        [ -n "$policy" ] && rm -f "$policy"
        trap - EXIT
    else
        echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
        echo "deps.sh: run as root:  sudo sh -c '$cmd'" >&2
        exit 1
    fi
fi

if [ "$want_node" = 1 ]; then
    if [ -L tests/node_modules ]; then
        # a shared install linked in (worktrees): npm ci would empty the link's
        # target for everyone, then replace the link; leave it to its owner
        [ -d tests/node_modules ] || { echo "deps.sh: tests/node_modules links nowhere" >&2; exit 1; }
    elif [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules ]; then
        echo "deps.sh: npm ci in tests/"
        (cd tests && npm ci --no-audit --no-fund)
        touch tests/node_modules
    fi
fi
