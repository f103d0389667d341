/* lease — which broker owns which MCP server, when several share one Redis.
 *
 * <prefix>mcp:owner:<server> holds the owner's broker id (SET PX, renewed
 * each second by the owner); <prefix>broker:<id> is the owner's liveness key
 * (PX 3 s, refreshed each second). A broker may take a lease when it is free,
 * already its own, or held by a broker whose liveness key is gone: all in one
 * Lua script, so two brokers never both win. */
#ifndef AIPROXY_LEASE_H
#define AIPROXY_LEASE_H

#define LEASE_TTL_MS     10000
#define LEASE_ALIVE_MS   3000
#define LEASE_BEAT_MS    1000

/* KEYS[1] = owner key; ARGV[1] = our id, ARGV[2] = ttl ms, ARGV[3] = liveness
 * key prefix ("<prefix>broker:"). Returns 1 (ours now) or 0 (a live broker has it). */
extern const char lease_acquire_lua[];

/* KEYS[1] = owner key; ARGV[1] = our id. Deletes the lease if it is ours. */
extern const char lease_release_lua[];

#endif
