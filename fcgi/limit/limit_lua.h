/* limit_lua — the two Lua scripts of the limiter (docs/keys.md, "Limits"),
 * run with EVALSHA (EVAL when Redis answers NOSCRIPT) on the thread's registry
 * connection, one round trip each. Both read the clock with Redis's TIME so
 * hosts with skewed clocks agree; Redis 7 replicates their effects.
 *
 * gate: KEYS[1] = "<prefix>lim:<principal id>:"; ARGV = rpm, tpm,
 *   max_concurrent, tokens_per_day, tokens_per_month (0: not limited), the
 *   request's concurrency member ("" when max_concurrent is 0) and the slot's
 *   lease in ms. Checks every limit, and only when all pass takes one request
 *   from the rpm GCRA and adds the member to the in-flight ZSET. Returns the
 *   integers {verdict, requests remaining, requests reset ms, tokens remaining,
 *   tokens reset ms, retry ms, tokens used today, this month, in flight,
 *   the clock it read in µs} (limit_wire.h: limit_parse_gate).
 * end: KEYS[1] as above; ARGV = tpm, tokens_per_day, tokens_per_month, the
 *   member ("" none) and the request's tokens. Charges the tokens to the tpm
 *   bucket and the budgets that are set, and frees the slot. Returns 1.
 * Both take one more ARGV: a clock in µs used instead of TIME. Unit tests
 * (tests/unit/fcgi/test_limit_lua.c) give it so GCRA steps and UTC day and
 * month boundaries can be checked against a real Redis; limit_end gives the
 * end the gate's clock plus the responder's monotonic time since, which
 * saves the end a TIME (a sixth of its work in Redis) and trails Redis's
 * own clock by no more than the gate reply's latency. */
#ifndef AIPROXY_LIMIT_LUA_H
#define AIPROXY_LIMIT_LUA_H

extern const char limit_lua_gate[];
extern const char limit_lua_end[];

/* The gate as a Lua function, `local function limit_gate(base, rpm, tpm,
 * max_concurrent, tokens_per_day, tokens_per_month, member, lease_ms,
 * now_us)`: KEYS[1] and the ARGV of the gate above as Lua values (numbers
 * as numbers; now_us the clock its caller read from TIME), with the same
 * answer, for a script that runs it after work of its own in the same round
 * trip (the managed-key lookup, fcgi/auth). */
extern const char limit_lua_gate_fn[];

#endif
