/* mcp-probe — a command-line MCP client over the broker's own session layer
 * and transports: initialize, tools/list, optionally one tools/call, the
 * results printed as one JSON object on stdout. Used by the conformance suite
 * (which appends the server URL to the command line) and by hand to check
 * that a server configured for the broker answers.
 *
 *   mcp-probe [--transport http|sse|stdio] [--header 'Name: value']...
 *             [--timeout SECONDS] [--call TOOL [--args JSON]]
 *             [--auth GRANT] [--auth-client-id ID] [--auth-client-secret S]
 *             [--auth-key-file PEM [--auth-alg ES256|RS256]] [--auth-scope S]
 *             [--auth-client-metadata-url URL] [--auth-context-env VAR]
 *             [--elicitation decline|defaults] [--sampling-text TEXT]
 *             URL | COMMAND [ARG...] [-- ARG...]
 *
 * Any --auth* option gives the server an `auth` block (docs/mcp-auth.md):
 * GRANT is client_credentials or authorization_code (headless: only against
 * an authorization server that approves without a user, as the conformance
 * suite's does). --auth-context-env names an environment variable holding
 * JSON {client_id, client_secret, private_key_pem, signing_algorithm} (the
 * conformance runner's MCP_CONFORMANCE_CONTEXT); its credentials imply
 * client_credentials unless --auth says otherwise. The probe caches no token.
 * --elicitation is the server setting of that name (docs/config.md). With
 * --sampling-text the probe declares sampling and answers every
 * sampling/createMessage during its call with TEXT (a canned answer: there is
 * no assistant here); without it, sampling is neither declared nor served.
 *
 * Exit 0 when the session came up (and the call, if any, got an answer, even
 * one with isError: the JSON says so); 1 otherwise, with {"ok":false,...}. */
#include "mcp-broker/curlmux.h"
#include "mcp-broker/session.h"

#include "shared/jget.h"
#include "shared/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct probe {
    mcp_session_t *s;
    const char *call;          /* tool to call, or NULL */
    const char *sampling_text; /* canned sampling answer, or NULL */
    json_object *args;         /* its arguments (owned) */
    long timeout_s;
    uv_timer_t guard;          /* bounds the whole run */
    json_object *tools;        /* first catalog (owned) */
    json_object *result;       /* tools/call result (owned) */
    char error[1024];
    int listed, called, closed;
} probe_t;

static void probe__usage(void)
{
    fprintf(stderr,
            "usage: mcp-probe [--transport http|sse|stdio] [--header 'Name: value']...\n"
            "                 [--timeout SECONDS] [--call TOOL [--args JSON]]\n"
            "                 [--auth GRANT] [--auth-client-id ID] [--auth-client-secret S]\n"
            "                 [--auth-key-file PEM [--auth-alg ES256|RS256]] [--auth-scope S]\n"
            "                 [--auth-client-metadata-url URL] [--auth-context-env VAR]\n"
            "                 [--elicitation decline|defaults] [--sampling-text TEXT]\n"
            "                 URL | COMMAND [ARG...] [-- ARG...]\n");
}

static int64_t probe__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void probe__on_call(void *ud, int ok, json_object *result, const char *error)
{
    probe_t *p = ud;

    p->called = 1;
    if (ok)
        p->result = json_object_get(result);
    else
        snprintf(p->error, sizeof(p->error), "tools/call %s: %s", p->call, error ? error : "failed");
    mcp_session_close(p->s);
}

/* --sampling-text: the canned answer, at once, for the (only) call. */
static int probe__on_sampling(void *ud, void *const *calls, size_t n, int64_t sid,
                              json_object *params, void **chosen, char *err, size_t errlen)
{
    probe_t *p = ud;
    json_object *res = json_object_new_object(), *content = json_object_new_object();
    int rc = -ENOMEM;

    (void)n;
    (void)params;
    if (!res || !content) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    json_object_object_add(content, "type", json_object_new_string("text"));
    json_object_object_add(content, "text", json_object_new_string(p->sampling_text));
    json_object_object_add(res, "role", json_object_new_string("assistant"));
    json_object_object_add(res, "content", content);
    content = NULL;
    json_object_object_add(res, "model", json_object_new_string("mcp-probe"));
    json_object_object_add(res, "stopReason", json_object_new_string("endTurn"));
    *chosen = calls[0];
    mcp_session_answer(p->s, calls[0], sid, res, NULL);
    rc = 0;
out:
    json_object_put(content);
    json_object_put(res);
    return rc;
}

static void probe__on_tools(void *ud, json_object *tools)
{
    probe_t *p = ud;
    json_object *copy = NULL;

    if (p->listed)
        return;   /* a list_changed refresh: the first catalog is what we print */
    p->listed = 1;
    if (json_object_deep_copy(tools, &copy, NULL) == 0)
        p->tools = copy;
    if (!p->call) {
        mcp_session_close(p->s);
        return;
    }
    if (mcp_session_call(p->s, p->call, p->args, probe__now_ms() + p->timeout_s * 1000,
                         probe__on_call, p) < 0) {
        snprintf(p->error, sizeof(p->error), "tools/call %s: cannot send", p->call);
        mcp_session_close(p->s);
    }
}

static void probe__on_closed(void *ud, const char *reason)
{
    probe_t *p = ud;

    p->closed = 1;
    if (!p->listed && !p->error[0])
        snprintf(p->error, sizeof(p->error), "session ended before tools/list: %s", reason);
    uv_timer_stop(&p->guard);
    uv_close((uv_handle_t *)&p->guard, NULL);
}

static void probe__on_guard(uv_timer_t *h)
{
    probe_t *p = h->data;

    if (!p->error[0])
        snprintf(p->error, sizeof(p->error), "no answer within %ld s", p->timeout_s);
    mcp_session_close(p->s);
}

/* Builds the registry-style server entry from the command line. Returns 0
 * or -EINVAL with err. */
/* Reads a whole (small) file into a malloc'd string, or NULL. */
static char *probe__slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s = NULL;
    size_t n;

    if (!f)
        return NULL;
    s = calloc(1, 65536);
    if (s) {
        n = fread(s, 1, 65535, f);
        s[n] = '\0';
    }
    fclose(f);
    return s;
}

/* The auth block from --auth-context-env VAR's JSON, over which explicit
 * flags win. Returns 0 or -EINVAL. */
static int probe__auth_context(json_object *auth, const char *var, char *err, size_t errlen)
{
    const char *v = getenv(var);
    json_object *ctx, *f;
    int rc = 0;

    if (!v || !*v)
        return 0;   /* a scenario without credentials */
    ctx = json_tokener_parse(v);
    if (!ctx || !json_object_is_type(ctx, json_type_object)) {
        snprintf(err, errlen, "--auth-context-env: $%.64s is not a JSON object", var);
        rc = -EINVAL;
        goto out;
    }
    if (json_object_object_get_ex(ctx, "client_id", &f) && !jget(auth, "client_id"))
        json_object_object_add(auth, "client_id", json_object_get(f));
    if (json_object_object_get_ex(ctx, "client_secret", &f) && !jget(auth, "client_secret"))
        json_object_object_add(auth, "client_secret", json_object_get(f));
    if (json_object_object_get_ex(ctx, "private_key_pem", &f) && !jget(auth, "private_key_jwt")) {
        json_object *jwt = json_object_new_object();
        json_object_object_add(jwt, "key", json_object_get(f));
        if (json_object_object_get_ex(ctx, "signing_algorithm", &f))
            json_object_object_add(jwt, "alg", json_object_get(f));
        json_object_object_add(auth, "private_key_jwt", jwt);
    }
    if (!jget(auth, "grant") && (jget(auth, "client_secret") || jget(auth, "private_key_jwt")))
        json_object_object_add(auth, "grant", json_object_new_string("client_credentials"));
out:
    json_object_put(ctx);
    return rc;
}

/* --auth* options into the auth object. Returns 1 if argv[*i] was one (and
 * consumed its value), 0 if not, -EINVAL on a bad one. */
static int probe__auth_opt(int argc, char **argv, int *i, json_object *auth, const char **ctxvar,
                           char *err, size_t errlen)
{
    static const struct { const char *opt, *field; } plain[] = {
        {"--auth", "grant"}, {"--auth-client-id", "client_id"},
        {"--auth-client-secret", "client_secret"}, {"--auth-scope", "scope"},
        {"--auth-client-metadata-url", "client_metadata_url"},
    };
    const char *a = argv[*i];

    if (strncmp(a, "--auth", 6) != 0)
        return 0;
    if (*i + 1 >= argc) {
        snprintf(err, errlen, "%.64s: needs a value", a);
        return -EINVAL;
    }
    for (size_t k = 0; k < sizeof(plain) / sizeof(plain[0]); k++) {
        if (strcmp(a, plain[k].opt) == 0) {
            json_object_object_add(auth, plain[k].field, json_object_new_string(argv[++*i]));
            return 1;
        }
    }
    if (strcmp(a, "--auth-context-env") == 0) {
        *ctxvar = argv[++*i];
        return 1;
    }
    if (strcmp(a, "--auth-key-file") == 0 || strcmp(a, "--auth-alg") == 0) {
        json_object *jwt = jget(auth, "private_key_jwt");
        if (!jwt) {
            jwt = json_object_new_object();
            json_object_object_add(auth, "private_key_jwt", jwt);
        }
        if (strcmp(a, "--auth-alg") == 0) {
            json_object_object_add(jwt, "alg", json_object_new_string(argv[++*i]));
        } else {
            char *pem = probe__slurp(argv[++*i]);
            if (!pem) {
                snprintf(err, errlen, "--auth-key-file: cannot read '%.200s'", argv[*i]);
                return -EINVAL;
            }
            json_object_object_add(jwt, "key", json_object_new_string(pem));
            free(pem);
        }
        return 1;
    }
    snprintf(err, errlen, "unknown option '%.100s'", a);
    return -EINVAL;
}

static int probe__server(int argc, char **argv, probe_t *p, json_object *server, char *err,
                         size_t errlen)
{
    json_object *auth = json_object_new_object();
    const char *ctxvar = NULL;
    int ar, any_auth = 0;
    json_object *headers = json_object_new_object(), *args = json_object_new_array();
    const char *transport = NULL, *target = NULL;
    int i, dashdash = 0, rc = -EINVAL;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;

        if (!dashdash && (ar = probe__auth_opt(argc, argv, &i, auth, &ctxvar, err, errlen)) != 0) {
            if (ar < 0)
                goto out;
            any_auth = 1;
        } else if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = 1;
        } else if (!dashdash && strcmp(a, "--elicitation") == 0 && has_val) {
            json_object_object_add(server, "elicitation", json_object_new_string(argv[++i]));
        } else if (!dashdash && strcmp(a, "--sampling-text") == 0 && has_val) {
            p->sampling_text = argv[++i];
        } else if (!dashdash && strcmp(a, "--transport") == 0 && has_val) {
            transport = argv[++i];
        } else if (!dashdash && strcmp(a, "--call") == 0 && has_val) {
            p->call = argv[++i];
        } else if (!dashdash && strcmp(a, "--args") == 0 && has_val) {
            json_object_put(p->args);
            p->args = json_tokener_parse(argv[++i]);
            if (!p->args || !json_object_is_type(p->args, json_type_object)) {
                snprintf(err, errlen, "--args: not a JSON object: %.200s", argv[i]);
                goto out;
            }
        } else if (!dashdash && strcmp(a, "--timeout") == 0 && has_val) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v <= 0 || v > 86400) {
                snprintf(err, errlen, "--timeout: want seconds between 1 and 86400, got '%.50s'", argv[i]);
                goto out;
            }
            p->timeout_s = v;
        } else if (!dashdash && strcmp(a, "--header") == 0 && has_val) {
            const char *h = argv[++i], *colon = strchr(h, ':');
            char name[256];
            if (!colon || colon == h || (size_t)(colon - h) >= sizeof(name)) {
                snprintf(err, errlen, "--header: want 'Name: value', got '%.200s'", h);
                goto out;
            }
            memcpy(name, h, (size_t)(colon - h));
            name[colon - h] = '\0';
            colon++;
            while (*colon == ' ')
                colon++;
            json_object_object_add(headers, name, json_object_new_string(colon));
        } else if (!dashdash && strncmp(a, "--", 2) == 0 && !target) {
            snprintf(err, errlen, "unknown option '%.100s'", a);
            goto out;
        } else if (!target) {
            target = a;
        } else {
            json_object_array_add(args, json_object_new_string(a));
        }
    }
    if (!target) {
        snprintf(err, errlen, "no server given (a URL, or a command for stdio)");
        goto out;
    }
    if (!transport)
        transport = strncmp(target, "http://", 7) == 0 || strncmp(target, "https://", 8) == 0 ? "http" : "stdio";
    json_object_object_add(server, "transport", json_object_new_string(transport));
    json_object_object_add(server, "timeout", json_object_new_int64(p->timeout_s));
    if (strcmp(transport, "stdio") == 0) {
        json_object_object_add(server, "command", json_object_new_string(target));
        json_object_object_add(server, "args", args);
        args = NULL;
    } else {
        if (json_object_array_length(args) > 0) {
            snprintf(err, errlen, "extra arguments after the URL");
            goto out;
        }
        json_object_object_add(server, "url", json_object_new_string(target));
        json_object_object_add(server, "headers", headers);
        headers = NULL;
        if (ctxvar && probe__auth_context(auth, ctxvar, err, errlen) < 0)
            goto out;
        if (any_auth) {
            json_object_object_add(server, "auth", auth);
            auth = NULL;
        }
    }
    rc = 0;
out:
    json_object_put(auth);
    json_object_put(headers);
    json_object_put(args);
    return rc;
}

static void probe__print(probe_t *p, int ok)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(ok));
    if (p->s)
        json_object_object_add(o, "protocolVersion", json_object_new_string(mcp_session_protocol(p->s)));
    if (p->tools) {
        json_object_object_add(o, "tools", p->tools);
        p->tools = NULL;
    }
    if (p->result) {
        json_object_object_add(o, "result", p->result);
        p->result = NULL;
    }
    if (p->error[0])
        json_object_object_add(o, "error", json_object_new_string(p->error));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

int main(int argc, char **argv)
{
    probe_t p = {.timeout_s = 30};
    mcp_session_cbs_t cbs = {.on_tools = probe__on_tools, .on_closed = probe__on_closed, .ud = &p};
    json_object *server = json_object_new_object();
    uv_loop_t loop;
    char err[1024] = "";
    int ok = 0;

    log_init("mcp-probe", LOG_LVL_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        probe__usage();
        goto out;
    }
    if (probe__server(argc, argv, &p, server, err, sizeof(err)) < 0) {
        fprintf(stderr, "mcp-probe: %s\n", err);
        probe__usage();
        goto out;
    }
    if (p.sampling_text)
        cbs.on_sampling = probe__on_sampling;
    p.s = mcp_session_new(&loop, "probe", server, &cbs, err, sizeof(err));
    if (!p.s) {
        snprintf(p.error, sizeof(p.error), "%s", err);
        probe__print(&p, 0);
        goto out;
    }
    uv_timer_init(&loop, &p.guard);
    p.guard.data = &p;
    /* initialize may take the session's own 30 s bound, then the call */
    uv_timer_start(&p.guard, probe__on_guard, (uint64_t)(p.timeout_s + 30) * 1000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ok = p.listed && (!p.call || p.result) && !p.error[0];
    probe__print(&p, ok);
out:
    mcp_session_free(p.s);
    curlmux_close(curlmux_get(&loop));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    json_object_put(p.tools);
    json_object_put(p.result);
    json_object_put(p.args);
    json_object_put(server);
    curl_global_cleanup();
    return ok ? 0 : 1;
}
