/* broker — the mcp-broker daemon's core: Redis pub/sub in, MCP sessions out
 * (docs/broker-protocol.md).
 *
 * Two async Redis connections on the libuv loop: one SUBSCRIBEd to
 * <prefix>mcp:calls and <prefix>reg:changed, one for commands (answers,
 * leases, catalogs, liveness). One server_t per MCP server it has been asked
 * about; sessions start lazily and restart with backoff. */
#ifndef AIPROXY_BROKER_H
#define AIPROXY_BROKER_H

#include <stddef.h>
#include <uv.h>

typedef struct broker broker_t;

/* A broker for Redis at `url` and key prefix `prefix`, running on `loop`.
 * Connects at once (and reconnects on its own later). NULL with err when the
 * URL is bad or the registry cannot be opened. */
broker_t *broker_new(uv_loop_t *loop, const char *url, const char *prefix, char *err, size_t errlen);

/* Starts the clean shutdown: sessions closed, children reaped, leases and the
 * liveness key released, Redis disconnected. `done` fires when nothing of the
 * broker is left on the loop; then broker_free. */
void broker_stop(broker_t *b, void (*done)(void *ud), void *ud);

/* The registry document (JSON text, borrowed: it must outlive b) written back
 * when the broker finds Redis without a registry, e.g. after Redis restarted
 * empty: see reg_set_seed. NULL (the default) turns that off. */
void broker_set_seed(broker_t *b, const char *json);

/* A broker started on demand (ondemand.h): with `token` (the responder's,
 * borrowed for this call; NULL or "" for a broker started otherwise) it
 * claims and keeps <prefix>broker:autostart; with idle_exit_s > 0 (or when
 * it finds itself one too many) it stops listening once idle that long and
 * calls idle(ud) on the loop, once: the host then stops it (broker_stop).
 * Without this call the broker never exits on its own. */
void broker_set_ondemand(broker_t *b, const char *token, int idle_exit_s, void (*idle)(void *ud),
                         void *ud);

void broker_free(broker_t *b);

struct server;
/* The MCP servers this broker has been asked about (a list: server_next),
 * borrowed until the next turn of the loop; for the metrics listener. */
struct server *broker_servers(broker_t *b);

#endif
