#!/usr/bin/env bash
# test_checksrc.sh — the banned-function checker (scripts/checksrc.sh) itself:
# it fails on each banned call, naming file:line and the replacement, and is
# not fooled by the names in comments, strings, character literals, longer
# identifiers or struct members. Run by scripts/test.sh with the unit tests.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHECK="$ROOT/scripts/checksrc.sh"
dir=$(mktemp -d /tmp/aiproxy-checksrc.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0

# expect NAME RC PATTERN FILE: the checker exits RC and its output matches PATTERN
expect() {
    local name=$1 want=$2 pat=$3 file=$4 out rc
    out=$("$CHECK" "$file" 2>&1)
    rc=$?
    if [ "$rc" -ne "$want" ] || ! grep -qE -- "$pat" <<<"$out"; then
        echo "FAIL $name: exit $rc (want $want), output:"
        printf '%s\n' "$out" | sed 's/^/    /'
        fails=$((fails + 1))
    else
        echo "ok   $name"
    fi
}

cat >"$dir/bad.c" <<'EOF'
#include <stdio.h>
void f(char *d, const char *s, int n)
{
    sprintf(d, "%d", n);
    n = atoi (s);
    strcpy(d, s);
}
EOF
expect "a banned call fails, named with file:line and the replacement" 1 \
    "bad.c:4: banned sprintf\(\): use snprintf" "$dir/bad.c"
expect "a call with a space before ( is caught" 1 "bad.c:5: banned atoi\(\): use strtol" "$dir/bad.c"
expect "every call is reported, not just the first" 1 "bad.c:6: banned strcpy\(\)" "$dir/bad.c"

cat >"$dir/ncpy.c" <<'EOF'
void g(char *d, const char *s) { strncpy(d, s, 4); }
EOF
expect "strncpy is banned too (it does not NUL-terminate)" 1 \
    "ncpy.c:1: banned strncpy\(\): use snprintf" "$dir/ncpy.c"

cat >"$dir/clean.c" <<'EOF'
/* no sprintf here, nor strcpy(a, b) in this block comment:
 * atoi(x) on a second line of it */
#include <stdio.h>
struct ops { int (*rand)(void); int (*gets)(void); };
static int my_atoi(const char *s) { return s[0]; }   // not atoi(s): snprintf instead
int h(char *d, unsigned n, const char *s, struct ops *o, struct ops v)
{
    const char *msg = "do not call sprintf(buf, ...) or strcat(a, b)";
    const char *esc = "a \" quote then strcpy(x, y) \\";
    char c = '(';
    snprintf(d, n, "%s%s%c", msg, esc, c);
    vsnprintf(d, n, "%s", NULL);
    return my_atoi(s) + o->rand() + v.gets() + strtol(s, NULL, 10);
}
EOF
expect "comments, strings, literals, longer names and members do not count" 0 "^$" "$dir/clean.c"

cat >"$dir/lines.c" <<'EOF'
/* a comment
   spanning lines with "quotes' */
const char *s = "multi\
line";
int k(const char *p) { return atol(p); }
EOF
expect "line numbers hold after multi-line comments and strings" 1 \
    "lines.c:5: banned atol\(\)" "$dir/lines.c"

expect "an unreadable file is an error, not a pass" 2 "cannot read" "$dir/missing.c"

if [ "$fails" -gt 0 ]; then
    echo "test_checksrc: $fails failed"
    exit 1
fi
echo "test_checksrc: all passed"
