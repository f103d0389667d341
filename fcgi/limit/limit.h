/* limit — a principal's limits enforced fleet-wide in Redis (docs/keys.md,
 * "Limits"): requests per minute, tokens per minute, requests in flight and
 * daily/monthly token budgets of the effective policy (fcgi/auth/principal.h),
 * counted by Lua scripts (limit_lua.h) on the thread's registry connection so
 * every host of the fleet shares one count. Two hooks of the route table
 * (fcgi/routes.c): the gate's round trip (none when the key lookup ran it),
 * and the end's script, sent without waiting for its reply; none for a
 * principal without limits. Keys: "<prefix>lim:<principal id>:rpm|tpm|conc|d:<YYYYMMDD>|
 * m:<YYYYMM>". Settings: `limits: {fail_open_rate, fail_open_budget}`. */
#ifndef AIPROXY_LIMIT_H
#define AIPROXY_LIMIT_H

#include "fcgi/core/route.h"

#include <hiredis/hiredis.h>

/* The lookup of a managed key (fcgi/auth/auth_keys.c) runs the gate in its
 * own round trip, so a limited key costs one round trip before the answer,
 * not two: its script calls limit_lua_gate_fn (limit_lua.h) with the limits
 * of the policy it read, the request's in-flight id from limit_member and
 * the lease of limit_lease_ms, and hands the gate's part of the reply to
 * limit_pregate. limit_gate then uses that answer. */
#define LIMIT_MEMBER_LEN 48
void limit_member(char out[LIMIT_MEMBER_LEN]);
long long limit_lease_ms(void);

/* The gate's answer `rep` (borrowed: the script's array of 9 integers) for
 * in-flight id `member`, as an arena record for auth_principal_t.pregate;
 * NULL when `rep` is not such an answer (limit_gate then runs the gate). */
void *limit_pregate(arena_t *a, const redisReply *rep, const char *member);

/* routes_gate: checks and takes the request's share of every limit of
 * req->info.auth's policy (one request from rpm, an in-flight slot), adds the
 * x-ratelimit-* headers to every answer of the request, and refuses with a
 * 429 in *e (Retry-After and the rest added as headers) when a limit is
 * reached. When Redis is unreachable or fails: passes (fail open) or refuses
 * with a 503, by the `limits` settings (rate limits open, budgets closed by
 * default), logged at warn at most every 30 s. Returns 0 or -EACCES. */
int limit_gate(http_req_t *req, const route_t *r, svc_t *svc, aip_err_t *e);

/* routes_end, the last of them: for a request that passed limit_gate with
 * limits, sends the script that charges its tokens (req->info prompt +
 * completion) to tpm and the budgets and frees its in-flight slot, so Redis
 * has it before the client can send its next request; its reply is read by
 * the connection's next borrower (failures logged there). A request refused by the gate, or of a principal without
 * limits, costs nothing. Never fails the request (a lost slot heals when
 * its lease ends). */
void limit_end(const http_req_t *req, svc_t *svc);

/* routes_after, the first of them: forgets the request's record and gives
 * back whatever Redis connection it still held. */
void limit_after(const http_req_t *req, svc_t *svc);

#endif
