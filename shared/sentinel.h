/* sentinel — finding the Redis master through Redis Sentinel (hiredis 0.14 has
 * no Sentinel code of its own), for rconn's redis+sentinel:// URLs.
 *
 * The protocol of redis-doc's "Sentinel clients" guide: ask each Sentinel in
 * turn `SENTINEL get-master-addr-by-name <name>` with a short timeout, the one
 * that answered last time first; connect to the address given and check with
 * ROLE that it is a master (rconn does that step). Done again on every connect,
 * so a failover is followed by whoever reconnects. docs/redis.md. */
#ifndef AIPROXY_SENTINEL_H
#define AIPROXY_SENTINEL_H

#include "shared/rconn.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <sys/time.h>

/* Each Sentinel gets at most this long to accept and to answer. */
#define SENTINEL_TIMEOUT_MS 300

/* Reads a reply to SENTINEL get-master-addr-by-name. No I/O. 0 with host (cap
 * hostcap) and *port filled; -ENOENT when the Sentinel knows no such master (a
 * null reply); -EIO for an error reply (err has its text); -EPROTO for any
 * other shape. err says why on failure. */
int sentinel_parse_master(const redisReply *r, char *host, size_t hostcap, int *port, char *err,
                          size_t errlen);

/* Reads a reply to ROLE. No I/O. 1 when it says "master", 0 for another role
 * ("slave", "sentinel") or an error reply (a loading server), -EPROTO for any
 * other shape. */
int sentinel_parse_role(const redisReply *r);

/* Asks the Sentinels of `a` (a redis+sentinel:// address) where its master is:
 * each in turn, starting with the one that answered last in this process,
 * each bounded by SENTINEL_TIMEOUT_MS (or timeout_ms when shorter), with AUTH
 * when a->sentinel_password is set. Thread-safe. 0 with host and *port;
 * -EHOSTUNREACH when no Sentinel gave an answer, -ENOENT when those that did
 * know no master of that name; err says which and why, with the URL shown
 * without passwords. */
int sentinel_ask(const rconn_addr_t *a, int timeout_ms, char *host, size_t hostcap, int *port,
                 char *err, size_t errlen);

/* One Sentinel, s (one of a's): connect, AUTH, ask, each bounded by tv. 0
 * with host and *port, or a code of sentinel_parse_master, or -EHOSTUNREACH
 * (no answer), with why naming the Sentinel. For sentinel_ask and the watcher. */
int sentinel_ask_one(const rconn_addr_t *a, const rconn_hostport_t *s, struct timeval tv,
                     char *host, size_t hostcap, int *port, char *why, size_t whylen);

/* The index of the Sentinel that answered last in this process (the first
 * one sentinel_ask tries). */
int sentinel_front(void);

/* Reads a message on a Sentinel's +switch-master channel (["message",
 * "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"]). No
 * I/O. 1 when it moves the master named `master`, with its new host (cap
 * hostcap) and *port; 0 for anything else. */
int sentinel_parse_switch(const redisReply *r, const char *master, char *host, size_t hostcap,
                          int *port);

/* Starts, once per process (again in a forked child), a thread that follows
 * the master of `a` (a Sentinel address; last seen at host:port): subscribed
 * to +switch-master on one Sentinel at a time, asking again where the master
 * is after each lost link. Each move bumps sentinel_epoch(). No-op for a plain
 * address or when already running. The thread runs until the process exits;
 * it blocks every signal. Around a fork() it is stopped and joined (so the
 * process forks single-threaded when it was otherwise: the responder's master
 * forks its workers after seeding), and started again in the parent.
 * Thread-safe. In sentinel_watch.c. */
void sentinel_watch(const rconn_addr_t *a, const char *host, int port);

/* A number that changes each time the watcher sees the master move (0 until
 * then, and forever without a Sentinel URL). Thread-safe, no I/O. Holders of
 * long-lived connections compare it with the value they saw when they
 * connected and reconnect when it moved: an old master that Sentinel demoted
 * keeps taking writes (lost when it resyncs) until Sentinel reconfigures it,
 * seconds later. */
unsigned sentinel_epoch(void);

#endif
