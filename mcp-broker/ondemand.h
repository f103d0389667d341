/* ondemand — the broker's side of being started on demand by a responder
 * (agent/autostart.h, docs/broker-on-demand.md).
 *
 * A responder that started us holds <prefix>broker:autostart with a random
 * token and hands the token down (AIPROXY_BROKER_TOKEN). Once up, the broker
 * claims the key: its token (or nothing, if it expired meanwhile) is replaced
 * by the broker's record {"pid","broker","token"}, kept alive on every beat
 * for as long as the broker runs and deleted when it stops. While the record
 * lives no responder starts another broker; when it finds another broker's
 * record there, this broker is one too many and leaves as soon as it is idle.
 *
 * Idle exit (--idle-exit N, or AIPROXY_BROKER_IDLE_EXIT_S for a broker
 * started on demand): after N seconds without a call, the broker unsubscribes
 * from the calls channel, and stops once Redis confirms with no call having
 * arrived meanwhile (one that did puts it back to work). */
#ifndef AIPROXY_ONDEMAND_H
#define AIPROXY_ONDEMAND_H

#include <stddef.h>

#define ONDEMAND_KEY        "broker:autostart"    /* after the key prefix */
#define ONDEMAND_TOKEN_ENV  "AIPROXY_BROKER_TOKEN"
#define ONDEMAND_IDLE_ENV   "AIPROXY_BROKER_IDLE_EXIT_S"
#define ONDEMAND_IDLE_MAX_S 604800
/* the record outlives the liveness key (lease.h) a little: by the time a
 * responder may start a new broker, the dead one's leases are free too */
#define ONDEMAND_RECORD_MS  3500

/* KEYS[1] = the key; ARGV[1] = our token, ARGV[2] = our record, ARGV[3] =
 * ttl ms. Sets the record when the key holds the token, the record, or
 * nothing; 1 then, 0 when another broker's record (or token) is there. */
extern const char ondemand_claim_lua[];

/* KEYS[1] = the key; ARGV[1] = our record. Deletes it if it is ours. */
extern const char ondemand_release_lua[];

/* Seconds in `s` (0..ONDEMAND_IDLE_MAX_S) into *out: 0, or -EINVAL. */
int ondemand_parse_idle(const char *s, int *out);

/* The record JSON for broker `id`, this process and `token` into out;
 * 0, or -ENOSPC. */
int ondemand_record(char *out, size_t n, const char *id, const char *token);

#endif
