#!/usr/bin/env bash
# checksrc.sh [FILE...] — banned C functions, like curl's checksrc.
# With no argument, checks every tracked .c/.h under shared/ agent/ fcgi/
# mcp-broker/ mcp-demo/ tests/; with arguments, just those files. Prints one
#   FILE:LINE: banned NAME(): use REPLACEMENT
# per call found and exits 1 if there was any (0 when clean, 2 on a usage or
# read error). Comments, string and character literals are blanked out before
# the scan (so "no sprintf here" in a comment or a message does not count), and
# so are `.name`/`->name` members; a call is the name followed by `(`, which
# also catches taking it into a macro. `make test` runs it first.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ "$#" -gt 0 ]; then
    files=("$@")
else
    cd "$ROOT" || exit 2
    mapfile -t files < <(git ls-files -- shared agent fcgi mcp-broker mcp-demo tests \
                         | grep -E '\.(c|h)$')
    if [ "${#files[@]}" -eq 0 ]; then
        echo "checksrc: no tracked C sources found under $ROOT (not a git checkout?)" >&2
        exit 2
    fi
fi

exec perl -e '
use strict; use warnings;
# name => what to use instead (and why, when it is not obvious)
my %ban = (
  sprintf  => "snprintf(buf, sizeof buf, ...) and check for truncation",
  vsprintf => "vsnprintf(buf, sizeof buf, ...)",
  strcpy   => "snprintf(dst, sizeof dst, \"%s\", src), or memcpy with a length you checked",
  stpcpy   => "memcpy with a length you checked",
  strcat   => "snprintf at the end of a capped buffer, or buf_puts (shared/buf.h)",
  strncat  => "snprintf at the end of a capped buffer, or buf_puts (shared/buf.h)",
  strncpy  => "snprintf(dst, sizeof dst, \"%s\", src): strncpy does not NUL-terminate",
  stpncpy  => "memcpy with a length you checked, then a NUL",
  gets     => "fgets(buf, sizeof buf, fp)",
  atoi     => "strtol with an end pointer, errno and a range check",
  atol     => "strtol with an end pointer, errno and a range check",
  atoll    => "strtoll with an end pointer, errno and a range check",
  atof     => "strtod with an end pointer and errno",
  strtok   => "strtok_r (strtok keeps hidden state: not reentrant, not thread-safe)",
  tmpnam   => "mkstemp / mkdtemp (the name races with an attacker)",
  tempnam  => "mkstemp / mkdtemp (the name races with an attacker)",
  mktemp   => "mkstemp / mkdtemp (the name races with an attacker)",
  gmtime   => "gmtime_r (gmtime returns a shared static struct: not thread-safe)",
  localtime => "localtime_r (localtime returns a shared static struct: not thread-safe)",
  ctime    => "strftime over localtime_r (ctime returns a shared static buffer)",
  asctime  => "strftime (asctime returns a shared static buffer)",
  rand     => "getrandom(2), or a per-thread PRNG state (rand shares hidden state across threads)",
  srand    => "getrandom(2), or a per-thread PRNG state",
  alloca   => "a capped fixed-size array or malloc (alloca cannot fail gracefully)",
);
my $re = join("|", sort keys %ban);
my ($bad, $err) = (0, 0);
for my $f (@ARGV) {
  open(my $fh, "<", $f) or do { print STDERR "checksrc: cannot read $f: $!\n"; $err = 1; next };
  local $/; my $s = <$fh>; close $fh;
  # Blank comments and literals, keeping every newline so line numbers hold.
  my $blank = sub { my $t = shift; $t =~ s/[^\n]/ /g; $t };
  $s =~ s{ (/\*.*?\*/) | (//[^\n]*) | ("(?:\\.|[^"\\\n])*") | (\x27(?:\\.|[^\x27\\\n])*\x27) }
         { defined $1 ? $blank->($1) : defined $2 ? $blank->($2)
           : defined $3 ? "\"" . $blank->(substr($3, 1, -1)) . "\""
           : "\x27" . $blank->(substr($4, 1, -1)) . "\x27" }gsex;
  my @lines = split /\n/, $s, -1;
  for my $i (0 .. $#lines) {
    # not part of a longer name, not a member (s.rand(), p->rand())
    while ($lines[$i] =~ /(?<![\w.])(?<!->)($re)\s*\(/g) {
      my $n = $1;
      print "$f:", $i + 1, ": banned $n(): use $ban{$n}\n";
      $bad = 1;
    }
  }
}
if ($bad) {
  print "checksrc: banned functions found (scripts/checksrc.sh, docs/checks.md)\n";
  exit 1;
}
exit($err ? 2 : 0);
' -- "${files[@]}"
