#!/usr/bin/env bash
# run.sh — `make run`: aiproxy in the foreground on AIPROXY_LISTEN
# (default 127.0.0.1:8000): a private Redis on a unix socket under ./run
# (unless REDIS_URL is set), mcp-broker, the FastCGI responders and a web
# server in front: AIPROXY_WEBSERVER=nginx (default, conf/nginx/aiproxy.conf.in),
# apache (conf/apache/aiproxy-proxy-fcgi.conf.in) or lighttpd
# (conf/lighttpd/aiproxy.conf.in). Ctrl-C / SIGTERM stops everything it started.
#
# The private Redis keeps its data in the run directory (append-only file,
# fsync once a second), so admin edits survive a restart of `make run`. The
# config file only seeds an empty registry: once Redis holds one, the file is
# not applied again (GET /admin/config exports the live registry; to start
# over from the file, stop and delete RUN_DIR/appendonlydir).
#
# Environment: AIPROXY_WEBSERVER, AIPROXY_CONFIG (else ./config.yaml, else conf/config.example.yaml),
# AIPROXY_LISTEN, REDIS_URL, AIPROXY_BIN_DIR (default build/bin),
# AIPROXY_WORKERS (default nproc), AIPROXY_THREADS (default 64), AIPROXY_MAX_BODY,
# AIPROXY_RUN_DIR (default ./run: sockets, logs, the Redis data).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export AIPROXY_HOME="$ROOT"

RUN_DIR=${AIPROXY_RUN_DIR:-$ROOT/run}
case "$RUN_DIR" in /*) ;; *) RUN_DIR="$ROOT/$RUN_DIR" ;; esac
BIN_DIR=${AIPROXY_BIN_DIR:-build/bin}
case "$BIN_DIR" in /*) ;; *) BIN_DIR="$ROOT/$BIN_DIR" ;; esac
LISTEN=${AIPROXY_LISTEN:-127.0.0.1:8000}
WORKERS=${AIPROXY_WORKERS:-$(nproc)}
THREADS=${AIPROXY_THREADS:-64}

if [ -n "${AIPROXY_CONFIG:-}" ]; then CONFIG=$AIPROXY_CONFIG
elif [ -f "$ROOT/config.yaml" ]; then CONFIG="$ROOT/config.yaml"
else CONFIG="$ROOT/conf/config.example.yaml"; fi
case "$CONFIG" in /*) ;; *) CONFIG="$ROOT/$CONFIG" ;; esac
[ -r "$CONFIG" ] || { echo "run.sh: config $CONFIG not readable" >&2; exit 1; }
for b in aiproxy-fcgi mcp-broker; do
    [ -x "$BIN_DIR/$b" ] || { echo "run.sh: $BIN_DIR/$b missing: run make" >&2; exit 1; }
done
WEBSERVER=${AIPROXY_WEBSERVER:-nginx}
case "$WEBSERVER" in
    nginx) WEB_BIN=$(command -v nginx || echo /usr/sbin/nginx) ;;
    apache) WEB_BIN=$(command -v apache2 || echo /usr/sbin/apache2) ;;
    lighttpd) WEB_BIN=$(command -v lighttpd || echo /usr/sbin/lighttpd) ;;
    *) echo "run.sh: AIPROXY_WEBSERVER must be nginx, apache or lighttpd (got '$WEBSERVER')" >&2; exit 1 ;;
esac
[ -x "$WEB_BIN" ] || { echo "run.sh: $WEBSERVER not installed ($WEB_BIN): run make deps" >&2; exit 1; }
[[ "$LISTEN" =~ ^(.+):([0-9]+)$ ]] || { echo "run.sh: AIPROXY_LISTEN must be HOST:PORT (got '$LISTEN')" >&2; exit 1; }
LISTEN_HOST=${BASH_REMATCH[1]}
LISTEN_PORT=${BASH_REMATCH[2]}

mkdir -p "$RUN_DIR/nginx-tmp"
pids=()      # everything we started, in start order
names=()

stop_all() {
    trap - INT TERM EXIT
    local i pid
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
    done
    # Bounded wait (10 s), then SIGKILL whatever is left.
    for _ in $(seq 100); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[i]}" 2>/dev/null; then
            echo "run.sh: ${names[i]} ignored SIGTERM, killing it" >&2
            kill -KILL "${pids[i]}" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
    rm -f "$RUN_DIR/fcgi.sock" "$RUN_DIR/redis.sock"
}
on_signal() {
    echo
    echo "run.sh: stopping"
    stop_all
    exit 0
}
trap on_signal INT TERM
trap stop_all EXIT

started() { pids+=("$1"); names+=("$2"); }

alive_or_die() {
    local i
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[i]}" 2>/dev/null; then
            echo "run.sh: ${names[i]} exited during start-up (see its messages above)" >&2
            exit 1
        fi
    done
}

if [ -z "${REDIS_URL:-}" ]; then
    rm -f "$RUN_DIR/redis.sock"
    # AOF in $RUN_DIR/appendonlydir: admin edits outlive this script (at most
    # the last second of writes is lost if Redis itself is killed)
    redis-server --port 0 --unixsocket "$RUN_DIR/redis.sock" --unixsocketperm 700 \
        --save "" --appendonly yes --appendfsync everysec --dir "$RUN_DIR" --daemonize no \
        --logfile "$RUN_DIR/redis.log" &
    started $! redis-server
    export REDIS_URL="unix://$RUN_DIR/redis.sock"
    for _ in $(seq 100); do
        [ "$(redis-cli -s "$RUN_DIR/redis.sock" ping 2>/dev/null || true)" = PONG ] && break
        alive_or_die
        sleep 0.1
    done
    [ "$(redis-cli -s "$RUN_DIR/redis.sock" ping 2>/dev/null || true)" = PONG ] ||
        { echo "run.sh: redis-server did not answer (see $RUN_DIR/redis.log)" >&2; exit 1; }
fi

# A root broker runs stdio MCP servers as AIPROXY_MCP_USER (default nobody,
# docs/security.md). A checkout nobody cannot enter (e.g. under /root) would
# make the example config's mcp-demo fail to start: say so and keep them as
# root for this development stack only.
if [ "$(id -u)" = 0 ] && [ -z "${AIPROXY_MCP_USER:-}" ] &&
   ! runuser -u nobody -- test -x "$BIN_DIR/mcp-demo" 2>/dev/null; then
    echo "run.sh: user nobody cannot reach $BIN_DIR; MCP servers run as root here" \
         "(set AIPROXY_MCP_USER, or move the checkout somewhere world-readable)" >&2
    export AIPROXY_MCP_USER=root
fi
"$BIN_DIR/mcp-broker" -c "$CONFIG" &
started $! mcp-broker
# As root behind Apache, the socket is opened to Apache's unprivileged user.
sock_mode=()
[ "$(id -u)" = 0 ] && [ "$WEBSERVER" = apache ] && sock_mode=(--socket-mode 0666)
"$BIN_DIR/aiproxy-fcgi" -c "$CONFIG" -s "unix:$RUN_DIR/fcgi.sock" -w "$WORKERS" -t "$THREADS" \
    "${sock_mode[@]}" &
started $! aiproxy-fcgi

# The web server's body limit: the responder's (AIPROXY_MAX_BODY, default 4 MiB).
# The web server buffers each body and refuses an oversized one itself, in
# OpenAI's shape, so a slow or huge upload never holds a responder thread.
client_max_body=4194304
if [[ "${AIPROXY_MAX_BODY:-}" =~ ^([0-9]+)([kKmMgG]?)[bB]?$ ]]; then
    n=${BASH_REMATCH[1]}
    case "${BASH_REMATCH[2]}" in k|K) n=$((n * 1024)) ;; m|M) n=$((n * 1048576)) ;; g|G) n=$((n * 1073741824)) ;; esac
    client_max_body=$n
fi

# render TEMPLATE OUT NAME=VALUE...: replaces each @@NAME@@; fails on a leftover.
render() {
    local tpl=$1 out=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s|@@${kv%%=*}@@|${kv#*=}|g"); done
    sed "${args[@]}" "$tpl" > "$out"
    if grep -q '@@' "$out"; then
        echo "run.sh: unreplaced placeholder in $out" >&2; exit 1
    fi
}

case "$WEBSERVER" in
nginx)
    # libfcgi pins a responder thread to each idle kept connection, and each
    # nginx worker keeps its own cache of them: keep workers x keepalive at
    # half the threads at most, so idle connections never hold every thread
    # (with -t 2 and 2 nginx workers, one cached connection each did)
    nginx_workers=$(nproc)
    if [ $(( WORKERS * THREADS )) -lt $(( 2 * nginx_workers )) ]; then
        nginx_workers=$(( WORKERS * THREADS / 2 ))
        [ "$nginx_workers" -ge 1 ] || nginx_workers=1
    fi
    keepalive=$(( WORKERS * THREADS / (2 * nginx_workers) ))
    [ "$keepalive" -ge 1 ] || keepalive=1
    user_line=""
    [ "$(id -u)" = 0 ] && user_line="user root;"
    render conf/nginx/aiproxy.conf.in "$RUN_DIR/nginx.conf" "RUN_DIR=$RUN_DIR" "LISTEN=$LISTEN" \
        "FCGI_SOCKET=$RUN_DIR/fcgi.sock" "NGINX_WORKERS=$nginx_workers" "KEEPALIVE=$keepalive" \
        "CLIENT_MAX_BODY=$client_max_body" "USER_LINE=$user_line"
    "$WEB_BIN" -p "$RUN_DIR" -e "$RUN_DIR/nginx-error.log" -c "$RUN_DIR/nginx.conf" -g 'daemon off;' &
    started $! nginx
    ;;
apache)
    # As root Apache serves from www-data (it refuses root): let it reach the socket.
    user_lines=""
    if [ "$(id -u)" = 0 ]; then
        user_lines="User www-data\nGroup www-data"
        chmod 755 "$RUN_DIR"
    fi
    render conf/apache/aiproxy-proxy-fcgi.conf.in "$RUN_DIR/apache.conf" "RUN_DIR=$RUN_DIR" \
        "LISTEN=$LISTEN" "FCGI_SOCKET=$RUN_DIR/fcgi.sock" "MODULES_DIR=/usr/lib/apache2/modules" \
        "CLIENT_MAX_BODY=$((client_max_body * 2 + 1048576))" "USER_LINES=$user_lines" \
        "ERRORS_DIR=$ROOT/conf/errors"
    "$WEB_BIN" -d "$RUN_DIR" -f "$RUN_DIR/apache.conf" -DFOREGROUND &
    started $! apache2
    ;;
lighttpd)
    render conf/lighttpd/aiproxy.conf.in "$RUN_DIR/lighttpd.conf" "RUN_DIR=$RUN_DIR" \
        "BIND=$LISTEN_HOST" "PORT=$LISTEN_PORT" "MAX_REQUEST_KB=$(( (client_max_body + 1023) / 1024 ))" \
        "FASTCGI_SERVER=    \"socket\" => \"$RUN_DIR/fcgi.sock\"," "ERRORS_DIR=$ROOT/conf/errors"
    "$WEB_BIN" -D -f "$RUN_DIR/lighttpd.conf" &
    started $! lighttpd
    ;;
esac

URL="http://$LISTEN"
ok=0
for _ in $(seq 300); do
    alive_or_die
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/health" || true)" = 200 ]; then
        ok=1; break
    fi
    sleep 0.1
done
if [ "$ok" != 1 ]; then
    echo "run.sh: $URL/health did not answer 200 within 30 s ($WEBSERVER log: $RUN_DIR/$WEBSERVER-error.log)" >&2
    exit 1
fi

first=$(curl -s --max-time 2 "$URL/v1/models" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4 || true)
cat <<MSG

aiproxy is up at $URL behind $WEBSERVER   (config: $CONFIG, Redis: $REDIS_URL)
  curl $URL/v1/models
  curl $URL/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{"model":"${first:-ASSISTANT}","messages":[{"role":"user","content":"Hello"}]}'
Ctrl-C stops it.
MSG

# -c seeds only an empty registry (never --reseed here): the persisted one,
# with its admin edits, wins over the file.
# Foreground until a signal, or until one of our processes dies.
set +e
wait -n "${pids[@]}"
rc=$?
set -e
for i in "${!pids[@]}"; do
    kill -0 "${pids[i]}" 2>/dev/null || echo "run.sh: ${names[i]} exited (status $rc); stopping the rest" >&2
done
exit 1
