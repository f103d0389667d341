/* mcp-demo — a small MCP server over stdio (newline-delimited JSON-RPC), for
 * the example config and the tests. Tools: add(a,b), echo(text),
 * uppercase(text); with --test-tools also sleep(ms), crash(), hang(), notify(),
 * with --trace-tool also tracectx() (answers the call's _meta.traceparent, for
 * the trace tests; a flag of its own, so the test tools' list stays as it was),
 * progress(seconds, every_ms, silent): sleeps, sending notifications/progress
 * every every_ms when the call carries _meta.progressToken (none when silent);
 * with MCP_DEMO_EXTRA_TOOLS=N also extra_0 .. extra_{N-1}.
 *
 * ask(method) sends the client a request and answers with the client's reply
 * (tests that clients answer server requests, if only with an error).
 * Requests are handled in order on the main thread, except sleep and
 * progress, which get a thread of their own so other requests keep flowing
 * (the broker's concurrency test relies on it). stdout carries only protocol; logs go to stderr.
 * tools/list is paginated two tools a page, to exercise clients' cursors. */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEMO_PAGE 2

static pthread_mutex_t demo_out_lock = PTHREAD_MUTEX_INITIALIZER; /* one writer at a time on stdout */
static int demo_test_tools;                                        /* set once in main */
static int demo_trace_tool;                                        /* tracectx, set once in main */

/* ask(): requests we sent the client, by our id "srv-N", and the tools/call
 * id each one answers. Main thread only. */
#define DEMO_MAX_ASKS 16
static struct { long n; json_object *call_id; } demo_asks[DEMO_MAX_ASKS];
static long demo_ask_seq;

static void demo_send(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

    pthread_mutex_lock(&demo_out_lock);
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&demo_out_lock);
}

static void demo_result(json_object *id, json_object *result)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(o, "id", json_object_get(id));
    json_object_object_add(o, "result", result);
    demo_send(o);
    json_object_put(o);
}

static void demo_error(json_object *id, int code, const char *msg)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();

    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(o, "id", id ? json_object_get(id) : NULL);
    json_object_object_add(o, "error", e);
    demo_send(o);
    json_object_put(o);
}

/* {content:[{type:text,text}], isError?} */
static json_object *demo_text(const char *text, int is_error)
{
    json_object *r = json_object_new_object(), *c = json_object_new_array(), *b = json_object_new_object();

    json_object_object_add(b, "type", json_object_new_string("text"));
    json_object_object_add(b, "text", json_object_new_string(text));
    json_object_array_add(c, b);
    json_object_object_add(r, "content", c);
    if (is_error)
        json_object_object_add(r, "isError", json_object_new_boolean(1));
    return r;
}

static json_object *demo_schema(const char *props, const char *required)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"type\":\"object\",\"properties\":%s,\"required\":%s}", props, required);
    return json_tokener_parse(buf);
}

/* MCP_DEMO_EXTRA_TOOLS=N adds tools extra_0 .. extra_{N-1} (echo-less, no
 * arguments), for the tool-cap tests; a value that is a path names a file
 * holding N, read at every tools/list, so a test can grow the catalog and
 * send list_changed (the notify test tool). Calling one answers its name. */
static long demo_extra_count(void)
{
    const char *e = getenv("MCP_DEMO_EXTRA_TOOLS");
    char buf[32] = "", *end = NULL;
    FILE *f;
    long n;

    if (!e || !*e)
        return 0;
    if (*e == '/') {
        if (!(f = fopen(e, "r")))
            return 0;
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
        e = buf;
    }
    n = strtol(e, &end, 10);
    return end != e && n > 0 && n <= 100000 ? n : 0;
}

static void demo_extra_tools(json_object *a)
{
    long n = demo_extra_count();
    char name[32];

    for (long i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        snprintf(name, sizeof(name), "extra_%ld", i);
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "description", json_object_new_string("An extra tool (MCP_DEMO_EXTRA_TOOLS)"));
        json_object_object_add(o, "inputSchema", demo_schema("{}", "[]"));
        json_object_array_add(a, o);
    }
}

static json_object *demo_tools(void)
{
    static const struct { const char *name, *desc, *props, *req; int test; } t[] = {
        {"add", "Add two numbers a and b", "{\"a\":{\"type\":\"number\"},\"b\":{\"type\":\"number\"}}", "[\"a\",\"b\"]", 0},
        {"echo", "Echo the text back", "{\"text\":{\"type\":\"string\"}}", "[\"text\"]", 0},
        {"uppercase", "The text in upper case", "{\"text\":{\"type\":\"string\"}}", "[\"text\"]", 0},
        {"sleep", "Answer after ms milliseconds", "{\"ms\":{\"type\":\"integer\"}}", "[\"ms\"]", 1},
        {"progress", "Answer after seconds, reporting progress every every_ms (none when silent)",
         "{\"seconds\":{\"type\":\"number\"},\"every_ms\":{\"type\":\"integer\"},"
         "\"silent\":{\"type\":\"boolean\"}}", "[\"seconds\"]", 1},
        {"crash", "Exit with status 3 at once", "{}", "[]", 1},
        {"hang", "Never answer", "{}", "[]", 1},
        {"notify", "Send notifications/tools/list_changed", "{}", "[]", 1},
        {"ask", "Send the client a request (method) and answer with its reply",
         "{\"method\":{\"type\":\"string\"}}", "[\"method\"]", 1},
        {"tracectx", "Answer with the call's _meta.traceparent (\"none\" when absent)", "{}", "[]", 2},
    };
    json_object *a = json_object_new_array();

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        json_object *o;
        if ((t[i].test == 1 && !demo_test_tools) || (t[i].test == 2 && !demo_trace_tool))
            continue;
        o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(t[i].name));
        json_object_object_add(o, "description", json_object_new_string(t[i].desc));
        json_object_object_add(o, "inputSchema", demo_schema(t[i].props, t[i].req));
        json_object_array_add(a, o);
    }
    demo_extra_tools(a);
    return a;
}

static void demo_list(json_object *id, json_object *params)
{
    json_object *all = demo_tools(), *page = json_object_new_array(), *r = json_object_new_object(), *c = NULL;
    size_t start = 0, n = json_object_array_length(all);

    if (params && json_object_object_get_ex(params, "cursor", &c)) {
        char *end = NULL;
        const char *cs = json_object_get_string(c);
        long v = strtol(cs ? cs : "", &end, 10);
        if (!cs || end == cs || *end || v < 0 || (size_t)v > n) {
            demo_error(id, -32602, "Invalid cursor");
            json_object_put(all);
            json_object_put(page);
            json_object_put(r);
            return;
        }
        start = (size_t)v;
    }
    for (size_t i = start; i < n && i < start + DEMO_PAGE; i++)
        json_object_array_add(page, json_object_get(json_object_array_get_idx(all, i)));
    json_object_object_add(r, "tools", page);
    if (start + DEMO_PAGE < n) {
        char cur[32];
        snprintf(cur, sizeof(cur), "%zu", start + DEMO_PAGE);
        json_object_object_add(r, "nextCursor", json_object_new_string(cur));
    }
    json_object_put(all);
    demo_result(id, r);
}

typedef struct demo_sleep {
    json_object *id;
    long ms;
} demo_sleep_t;

static void *demo_sleeper(void *arg)
{
    demo_sleep_t *d = arg;
    struct timespec ts = {d->ms / 1000, (d->ms % 1000) * 1000000L};
    char text[64];

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    snprintf(text, sizeof(text), "slept %ld ms", d->ms);
    demo_result(d->id, demo_text(text, 0));
    json_object_put(d->id);
    free(d);
    return NULL;
}

typedef struct demo_prog {
    json_object *id;         /* owned copies: the thread outlives the request */
    json_object *token;      /* NULL: the client asked for no progress */
    long ms, every_ms;
} demo_prog_t;

static void demo_pause(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* progress(): sleeps d->ms in steps of every_ms, reporting each step (MCP
 * notifications/progress: progress k of total n, with a message) before the
 * result, never after it. */
static void *demo_progresser(void *arg)
{
    demo_prog_t *d = arg;
    long n = (d->ms + d->every_ms - 1) / d->every_ms, left = d->ms, sent = 0;
    char text[96];

    for (long k = 1; left > 0; k++) {
        long step = left < d->every_ms ? left : d->every_ms;
        demo_pause(step);
        left -= step;
        if (d->token) {
            json_object *o = json_object_new_object(), *p = json_object_new_object();
            snprintf(text, sizeof(text), "step %ld of %ld", k, n);
            json_object_object_add(p, "progressToken", json_object_get(d->token));
            json_object_object_add(p, "progress", json_object_new_int64(k));
            json_object_object_add(p, "total", json_object_new_int64(n));
            json_object_object_add(p, "message", json_object_new_string(text));
            json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
            json_object_object_add(o, "method", json_object_new_string("notifications/progress"));
            json_object_object_add(o, "params", p);
            demo_send(o);
            json_object_put(o);
            sent++;
        }
    }
    snprintf(text, sizeof(text), "progressed %ld ms with %ld progress reports", d->ms, sent);
    demo_result(d->id, demo_text(text, 0));
    json_object_put(d->id);
    json_object_put(d->token);
    free(d);
    return NULL;
}

static int demo_num(json_object *args, const char *k, double *out)
{
    json_object *v = NULL;
    if (!args || !json_object_object_get_ex(args, k, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return -1;
    *out = json_object_get_double(v);
    return 0;
}

static const char *demo_str(json_object *args, const char *k)
{
    json_object *v = NULL;
    if (!args || !json_object_object_get_ex(args, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* A call that names the client's request (aiproxy's _meta key) says so on
 * stderr, which the broker logs: one grep follows a request into here. */
static void demo_log_rid(const char *name, json_object *params)
{
    json_object *meta = NULL, *rid = NULL;

    if (json_object_object_get_ex(params, "_meta", &meta) &&
        json_object_object_get_ex(meta, "io.aiproxy/request_id", &rid) &&
        json_object_is_type(rid, json_type_string))
        fprintf(stderr, "mcp-demo: tools/call %.64s request_id=%.128s\n", name,
                json_object_get_string(rid));
}

static void demo_call(json_object *id, json_object *params)
{
    json_object *jn = NULL, *args = NULL;
    const char *name;
    char text[128];

    if (!params || !json_object_object_get_ex(params, "name", &jn) || !json_object_is_type(jn, json_type_string)) {
        demo_error(id, -32602, "tools/call needs a name");
        return;
    }
    name = json_object_get_string(jn);
    json_object_object_get_ex(params, "arguments", &args);
    demo_log_rid(name, params);
    if (strcmp(name, "add") == 0) {
        double a, b;
        if (demo_num(args, "a", &a) || demo_num(args, "b", &b)) {
            demo_result(id, demo_text("add needs numbers a and b", 1));
            return;
        }
        if (a + b == (double)(long long)(a + b) && a + b < 9e15 && a + b > -9e15)
            snprintf(text, sizeof(text), "%lld", (long long)(a + b));
        else
            snprintf(text, sizeof(text), "%.17g", a + b);
        demo_result(id, demo_text(text, 0));
    } else if (strcmp(name, "echo") == 0 || strcmp(name, "uppercase") == 0) {
        const char *t = demo_str(args, "text");
        char *u;
        if (!t) {
            demo_result(id, demo_text("needs a string 'text'", 1));
            return;
        }
        u = strdup(t);
        if (u && name[0] == 'u')
            for (char *p = u; *p; p++)
                *p = (char)toupper((unsigned char)*p);
        demo_result(id, demo_text(u ? u : "", 0));
        free(u);
    } else if (demo_test_tools && strcmp(name, "sleep") == 0) {
        double ms = 0;
        pthread_t th;
        demo_sleep_t *d;
        if (demo_num(args, "ms", &ms) || ms < 0 || ms > 3600000) {
            demo_result(id, demo_text("sleep needs ms between 0 and 3600000", 1));
            return;
        }
        d = malloc(sizeof(*d));
        if (!d) {
            demo_error(id, -32603, "out of memory");
            return;
        }
        d->id = json_object_get(id);
        d->ms = (long)ms;
        if (pthread_create(&th, NULL, demo_sleeper, d) != 0) {
            json_object_put(d->id);
            free(d);
            demo_error(id, -32603, "cannot start a thread");
            return;
        }
        pthread_detach(th);
    } else if (demo_test_tools && strcmp(name, "progress") == 0) {
        double secs = 0, every = 1000;
        json_object *meta = NULL, *tok = NULL, *silent = NULL;
        pthread_t th;
        demo_prog_t *d;
        if (demo_num(args, "seconds", &secs) || secs < 0 || secs > 3600 ||
            (json_object_object_get_ex(args, "every_ms", NULL) &&
             (demo_num(args, "every_ms", &every) || every < 1 || every > 3600000))) {
            demo_result(id, demo_text("progress needs seconds (0 to 3600) and every_ms >= 1", 1));
            return;
        }
        json_object_object_get_ex(params, "_meta", &meta);
        if (meta)
            json_object_object_get_ex(meta, "progressToken", &tok);
        json_object_object_get_ex(args, "silent", &silent);
        d = calloc(1, sizeof(*d));
        if (!d) {
            demo_error(id, -32603, "out of memory");
            return;
        }
        /* deep copies: json-c reference counts are not atomic */
        if (json_object_deep_copy(id, &d->id, NULL) != 0 ||
            (tok && !json_object_get_boolean(silent) && json_object_deep_copy(tok, &d->token, NULL) != 0)) {
            json_object_put(d->id);
            free(d);
            demo_error(id, -32603, "out of memory");
            return;
        }
        d->ms = (long)(secs * 1000);
        d->every_ms = (long)every;
        if (pthread_create(&th, NULL, demo_progresser, d) != 0) {
            json_object_put(d->id);
            json_object_put(d->token);
            free(d);
            demo_error(id, -32603, "cannot start a thread");
            return;
        }
        pthread_detach(th);
    } else if (demo_trace_tool && strcmp(name, "tracectx") == 0) {
        json_object *meta = NULL, *tp = NULL;
        json_object_object_get_ex(params, "_meta", &meta);
        if (!meta || !json_object_object_get_ex(meta, "traceparent", &tp) ||
            !json_object_is_type(tp, json_type_string))
            tp = NULL;
        demo_result(id, demo_text(tp ? json_object_get_string(tp) : "none", 0));
    } else if (demo_test_tools && strcmp(name, "crash") == 0) {
        fprintf(stderr, "mcp-demo: crash() called, exiting with status 3\n");
        _exit(3);
    } else if (demo_test_tools && strcmp(name, "hang") == 0) {
        fprintf(stderr, "mcp-demo: hang() called, never answering\n");
    } else if (demo_test_tools && strcmp(name, "ask") == 0) {
        const char *m = demo_str(args, "method");
        size_t slot;
        json_object *req;
        char rid[32];
        for (slot = 0; slot < DEMO_MAX_ASKS && demo_asks[slot].call_id; slot++)
            ;
        if (!m || slot == DEMO_MAX_ASKS) {
            demo_result(id, demo_text(m ? "too many asks in flight" : "ask needs a method", 1));
            return;
        }
        demo_asks[slot].n = ++demo_ask_seq;
        demo_asks[slot].call_id = json_object_get(id);
        snprintf(rid, sizeof(rid), "srv-%ld", demo_ask_seq);
        req = json_object_new_object();
        json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
        json_object_object_add(req, "id", json_object_new_string(rid));
        json_object_object_add(req, "method", json_object_new_string(m));
        json_object_object_add(req, "params", json_object_new_object());
        demo_send(req);
        json_object_put(req);
    } else if (demo_test_tools && strcmp(name, "notify") == 0) {
        json_object *n = json_object_new_object();
        json_object_object_add(n, "jsonrpc", json_object_new_string("2.0"));
        json_object_object_add(n, "method", json_object_new_string("notifications/tools/list_changed"));
        demo_send(n);
        json_object_put(n);
        demo_result(id, demo_text("notified", 0));
    } else if (strncmp(name, "extra_", 6) == 0 && strtol(name + 6, NULL, 10) < demo_extra_count()) {
        demo_result(id, demo_text(name, 0));
    } else {
        snprintf(text, sizeof(text), "Unknown tool: %.80s", name);
        demo_error(id, -32602, text);
    }
}

static void demo_initialize(json_object *id, json_object *params)
{
    static const char *const known[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};
    const char *want = demo_str(params, "protocolVersion"), *ver = "2025-06-18";
    json_object *r = json_object_new_object(), *caps = json_object_new_object(),
                *tools = json_object_new_object(), *info = json_object_new_object();

    for (size_t i = 0; want && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(want, known[i]) == 0)
            ver = known[i];
    json_object_object_add(tools, "listChanged", json_object_new_boolean(1));
    json_object_object_add(caps, "tools", tools);
    json_object_object_add(info, "name", json_object_new_string("mcp-demo"));
    json_object_object_add(info, "version", json_object_new_string("0.1.0"));
    json_object_object_add(r, "protocolVersion", json_object_new_string(ver));
    json_object_object_add(r, "capabilities", caps);
    json_object_object_add(r, "serverInfo", info);
    demo_result(id, r);
}

static void demo_handle(const char *line)
{
    json_object *o = json_tokener_parse(line), *id = NULL, *m = NULL, *params = NULL;
    const char *method;

    if (!o || !json_object_is_type(o, json_type_object)) {
        demo_error(NULL, -32700, "Parse error");
        goto out;
    }
    json_object_object_get_ex(o, "id", &id);
    json_object_object_get_ex(o, "params", &params);
    if (!json_object_object_get_ex(o, "method", &m)) {
        /* a response: to one of our asks, answered as that tool call's text */
        char rid[64];
        snprintf(rid, sizeof(rid), "%s", id ? json_object_get_string(id) : "");
        for (size_t i = 0; i < DEMO_MAX_ASKS; i++) {
            char want[32];
            snprintf(want, sizeof(want), "srv-%ld", demo_asks[i].n);
            if (demo_asks[i].call_id && strcmp(rid, want) == 0) {
                json_object_object_del(o, "jsonrpc");
                json_object_object_del(o, "id");
                demo_result(demo_asks[i].call_id, demo_text(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), 0));
                json_object_put(demo_asks[i].call_id);
                demo_asks[i].call_id = NULL;
                break;
            }
        }
        goto out;
    }
    method = json_object_get_string(m);
    if (!id) {
        if (strcmp(method, "notifications/cancelled") == 0)
            fprintf(stderr, "mcp-demo: cancelled %s\n", json_object_to_json_string(params));
        goto out;
    }
    if (strcmp(method, "initialize") == 0)
        demo_initialize(id, params);
    else if (strcmp(method, "ping") == 0)
        demo_result(id, json_object_new_object());
    else if (strcmp(method, "tools/list") == 0)
        demo_list(id, params);
    else if (strcmp(method, "tools/call") == 0)
        demo_call(id, params);
    else
        demo_error(id, -32601, "Method not found");
out:
    json_object_put(o);
}

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--test-tools") == 0) {
            demo_test_tools = 1;
        } else if (strcmp(argv[i], "--trace-tool") == 0) {
            demo_trace_tool = 1;
        } else {
            fprintf(stderr, "usage: mcp-demo [--test-tools] [--trace-tool]\n");
            return 2;
        }
    }
    fprintf(stderr, "mcp-demo: ready%s\n", demo_test_tools ? " (with test tools)" : "");
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n > 0)
            demo_handle(line);
    }
    free(line);
    fprintf(stderr, "mcp-demo: stdin closed, exiting\n");
    return 0;
}
