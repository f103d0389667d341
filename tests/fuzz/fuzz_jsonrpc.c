/* fuzz_jsonrpc — mcp-broker/jsonrpc.h: the newline framer, then each line
 * parsed and classified, and the builders' output classified again.
 *
 * Input: byte 0 picks the line cap, byte 1 seeds the cut points, the rest is
 * an MCP stdio server's stdout. Checks: the same lines (and the same "a line
 * was too long") whether the bytes come whole or in pieces; a request we build
 * from a classified message classifies back to the same method and id; an
 * answer we build for it classifies as a result or an error. */
#include "mcp-broker/jsonrpc.h"
#include "shared/buf.h"
#include "tests/fuzz/fuzz_split.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_built(char *text, enum jsonrpc_kind want, const char *method, int64_t id)
{
    json_object *o;
    jsonrpc_msg_t m;
    char err[128];

    if (!text)
        abort();
    o = json_tokener_parse(text);
    if (!o || jsonrpc_classify(o, &m, err, sizeof err) != 0 || m.kind != want)
        abort();
    if (method && (strcmp(m.method, method) != 0 || m.num_id != id))
        abort();
    json_object_put(o);
    free(text);
}

static void classify_line(const char *line, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL;
    jsonrpc_msg_t m;
    char err[128];

    if (!tok)
        abort();
    o = json_tokener_parse_ex(tok, line, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success)
        goto out;
    err[0] = '\0';
    if (jsonrpc_classify(o, &m, err, sizeof err) != 0) {
        if (!err[0])
            abort();    /* a refusal always says why */
        goto out;
    }
    switch (m.kind) {
    case JSONRPC_REQUEST: {
        int64_t id = m.num_id >= 0 ? m.num_id : 7;
        check_built(jsonrpc_request(id, m.method, m.params), JSONRPC_REQUEST, m.method, id);
        check_built(jsonrpc_result(m.id, m.params), JSONRPC_RESULT, NULL, 0);
        check_built(jsonrpc_error(m.id, JSONRPC_METHOD_NOT_FOUND, m.method), JSONRPC_ERROR, NULL,
                    0);
        break;
    }
    case JSONRPC_NOTIFICATION:
        check_built(jsonrpc_notification(m.method, m.params), JSONRPC_NOTIFICATION, NULL, 0);
        break;
    case JSONRPC_RESULT:
    case JSONRPC_ERROR:
        if (!m.err_message && m.kind == JSONRPC_ERROR)
            abort();
        check_built(jsonrpc_error(m.id, (int)m.err_code, m.err_message), JSONRPC_ERROR, NULL, 0);
        break;
    default:
        abort();
    }
out:
    json_object_put(o);
    json_tokener_free(tok);
}

/* Records each line as "len:line\n" and classifies it. */
static int on_line(void *ud, const char *line, size_t len)
{
    buf_t *b = ud;

    if (line[len] != '\0' || len == 0)
        abort();
    if (buf_printf(b, "%zu:", len) < 0 || buf_append(b, line, len) < 0 || buf_append(b, "\n", 1) < 0)
        abort();
    classify_line(line, len);
    return 0;
}

static int feed(const char *d, size_t n, size_t max_line, uint8_t seed, int split, buf_t *lines)
{
    jsonrpc_framer_t f;
    fuzz_split_t s;
    size_t off = 0, take;
    int rc, overflow = 0;

    jsonrpc_framer_init(&f, max_line);
    fuzz_split_init(&s, seed);
    while (off < n) {
        take = split ? fuzz_split_next(&s, n - off) : n - off;
        rc = jsonrpc_framer_feed(&f, d + off, take, on_line, lines);
        if (rc == -ENOSPC)
            overflow = 1;
        else if (rc != 0)
            abort();
        off += take;
    }
    jsonrpc_framer_free(&f);
    return overflow;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[] = {8, 64, 512, 1u << 20};
    buf_t whole, cut;
    int o1, o2;

    if (size < 2)
        return 0;
    buf_init(&whole, 64u << 20);
    buf_init(&cut, 64u << 20);
    o1 = feed((const char *)data + 2, size - 2, caps[data[0] & 3], data[1], 0, &whole);
    o2 = feed((const char *)data + 2, size - 2, caps[data[0] & 3], data[1], 1, &cut);
    if (o1 != o2 || whole.len != cut.len || (whole.len && memcmp(whole.data, cut.data, whole.len)))
        abort();
    buf_free(&whole);
    buf_free(&cut);
    return 0;
}
