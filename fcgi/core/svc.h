/* svc — the services a responder thread owns and lends to each request's
 * handler, beside the request (http.h) rather than inside it: the request is
 * the client's bytes and how to answer them; these outlive it.
 *
 * The HTTP layer names the services' types only (no header of agent/ is
 * included here), so it does not depend on the layers above it; a surface
 * that uses the agent includes agent/agent.h itself. */
#ifndef AIPROXY_SVC_H
#define AIPROXY_SVC_H

#include "shared/reg.h"

struct agent;   /* agent/agent.h: agent_t */
struct mcpc;    /* agent/mcpc.h: mcpc_t */

typedef struct svc {
    /* The thread's registry; the core refreshes it before routing (see
     * route_t.reg_rc for the result). NULL while Redis has never been
     * reached by this thread. */
    reg_t *reg;
    struct agent *agent;   /* the thread's agent loop (its curl handles) */
    /* The thread's broker client (it borrows the process's Redis
     * connections), owned by the agent, for other users on the same thread
     * (admin's tool listing). */
    struct mcpc *mcpc;
} svc_t;

#endif
