/* limit_wire — the limiter without I/O (docs/keys.md, "Limits"): a policy's
 * limits, the script commands built from them, the gate script's reply, and
 * what a client is told (x-ratelimit-* headers, the 429's words). Pure:
 * tests/unit/fcgi/test_limit.c drives it; limit.c does the Redis round trips. */
#ifndef AIPROXY_LIMIT_WIRE_H
#define AIPROXY_LIMIT_WIRE_H

#include "shared/err.h"

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <stddef.h>

/* A principal's limits; 0: not limited. */
typedef struct limit_pol {
    long long rpm, tpm, conc, day, month;
} limit_pol_t;

/* Reads rpm, tpm, max_concurrent and budget.{tokens_per_day,tokens_per_month}
 * of an effective policy (auth_principal_t.policy; NULL: none). A field that
 * is absent, not a positive integer or not a number counts as unset (the
 * admin API validated it). Returns 1 when any limit is set, else 0. */
int limit_pol_from(json_object *policy, limit_pol_t *out);

/* Why the gate refused (the script's first integer). */
enum {
    LIMIT_OK = 0, LIMIT_RPM = 1, LIMIT_TPM = 2, LIMIT_CONC = 3, LIMIT_DAY = 4, LIMIT_MONTH = 5,
};

/* The gate script's answer. Times in ms. */
typedef struct limit_verdict {
    int verdict;                       /* LIMIT_* */
    long long req_remaining, req_reset_ms;
    long long tok_remaining, tok_reset_ms;
    long long retry_ms;                /* refused: when to try again */
    long long used_day, used_month, inflight;
    long long now_us;                  /* Redis's clock at the gate; 0 unknown */
} limit_verdict_t;

/* The gate script's reply -> *v. 0; -EIO when it is not the script's array
 * of 9 integers, or 10 with the clock (an error reply included: the caller
 * looks for NOSCRIPT before). Borrowed reply. */
int limit_parse_gate(const redisReply *rep, limit_verdict_t *v);

/* 1 when verdict v for `pol` passed and left every limit set at least a
 * tenth of its room (and 2 requests of rpm, 2 slots of max_concurrent): a
 * key with room, whose next verdicts the limiter may read beside the
 * upstream call (limit.h). Pure. */
int limit_headroom(const limit_pol_t *pol, const limit_verdict_t *v);

/* One script call as an argv for redisCommandArgv: "EVALSHA", sha, "1",
 * base, the ARGV of limit_lua.h. Strings borrow from the arguments and from
 * the struct; argv[0]/argv[1] may be swapped for "EVAL" and the script text. */
#define LIMIT_CMD_ARGS 12
typedef struct limit_cmd {
    int argc;
    const char *argv[LIMIT_CMD_ARGS];
    char num[8][24];
} limit_cmd_t;

/* The gate call for `pol`: `member` is the request's in-flight id ("" when
 * pol->conc is 0), `lease_ms` how long its slot lives if never released. */
void limit_cmd_gate(limit_cmd_t *c, const char *sha, const char *base, const limit_pol_t *pol,
                    const char *member, long long lease_ms);

/* The end call: charges `tokens` and frees `member` ("" none). */
void limit_cmd_end(limit_cmd_t *c, const char *sha, const char *base, const limit_pol_t *pol,
                   const char *member, long long tokens);

/* The key prefix of a principal's limits: "<prefix>lim:<id>:". 0, or
 * -ENOSPC when it does not fit in len. */
int limit_base(char *buf, size_t len, const char *prefix, const char *id);

/* A duration as OpenAI writes its reset headers (Go's time.Duration):
 * "0s", "120ms", "6s", "6.5s", "1m0s", "1h2m3s". Returns buf. */
const char *limit_duration(long long ms, char *buf, size_t len);

/* The headers of an answer of a limited principal: the x-ratelimit-*
 * -requests ones when rpm is set, the -tokens ones when tpm is set and, when
 * refused, Retry-After (whole seconds, rounded up) and retry-after-ms (not
 * for a monthly budget: a client should not wait weeks), plus
 * x-should-retry: false for a spent budget. Fills up to `max` entries;
 * returns how many. */
#define LIMIT_HDR_MAX 10
typedef struct limit_hdr {
    const char *name;
    char value[32];
} limit_hdr_t;
size_t limit_headers(const limit_pol_t *pol, const limit_verdict_t *v, limit_hdr_t *out,
                     size_t max);

/* The refusal of v (v->verdict != LIMIT_OK) as the client's error: 429
 * rate_limit_error, code rate_limit_exceeded (rpm, tpm, concurrency) or
 * insufficient_quota (a budget), a message naming the limit, its value and
 * when it resets; never the key. Returns -EIO (aip_err_set). */
int limit_refusal(const limit_pol_t *pol, const limit_verdict_t *v, aip_err_t *e);

#endif
