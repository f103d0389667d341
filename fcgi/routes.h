/* routes — the responder's whole HTTP surface: one table of hooks
 * (core/route.h) naming every route, its methods, whether it needs a
 * credential, its API surface (credential check and error shape), what the
 * core does around it, its handler and its line in the GET / index. */
#ifndef AIPROXY_ROUTES_H
#define AIPROXY_ROUTES_H

#include "fcgi/core/route.h"

/* Ends with an entry whose path is NULL. Static; main hands it to the core
 * (serve_cfg_t.routes). */
extern const route_def_t routes_table[];

/* What runs when every request is answered (route_hook_fn), in order:
 * routes_end before the request is finished, routes_after once it is.
 * NULL-ended. main hands them to the core (serve_cfg_t.end, .after). */
extern const route_hook_fn routes_end[];
/* Run after the credential check of every route that needs one
 * (route_gate_fn): limits. NULL-ended; serve_cfg_t.gate. */
extern const route_gate_fn routes_gate[];
extern const route_hook_fn routes_after[];

#endif
