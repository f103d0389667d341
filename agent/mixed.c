/* mixed — see mixed.h and docs/agent.md "Mixed turns".
 *
 * Key: <prefix>mixed:<sha256(assistant name), 16 hex>:<token>. The token is
 * ours (rid: unpredictable), not the upstream's call id, which some upstreams
 * make guessable ("call_0"): a client can only name a round whose ids it was
 * given, and only through the assistant that made it. */
#include "agent/mixed.h"
#include "shared/caps.h"
#include "shared/jget.h"
#include "shared/log.h"
#include "shared/rid.h"
#include "shared/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MX_KEY_LEN 128

/* Adds key -> v (stolen: put on failure); 0 or -ENOMEM (v NULL counts as a
 * failed allocation). */
static int mx__set(json_object *o, const char *key, json_object *v)
{
    if (!v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

/* Adds key -> a reference to v, which may be JSON null (NULL); 0 or -ENOMEM. */
static int mx__copy(json_object *o, const char *key, json_object *v)
{
    if (json_object_object_add(o, key, json_object_get(v)) != 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

static int mx__is_client(const tn_map_t *map, json_object *call)
{
    const char *name = jget_str(jget(call, "function"), "name"), *sv, *tl;

    return name && tn_taken(map, name) && tn_lookup(map, name, &sv, &tl) < 0;
}

int mx_is_mixed(const tn_map_t *map, json_object *calls)
{
    size_t n = calls ? json_object_array_length(calls) : 0, client = 0;

    for (size_t i = 0; i < n; i++)
        client += (size_t)mx__is_client(map, json_object_array_get_idx(calls, i));
    return client > 0 && client < n;
}

int mx_ttl(void)
{
    const char *s = getenv("AIPROXY_MIXED_TTL_S");
    char *end;
    long v;

    if (!s || !*s)
        return MX_TTL_DEFAULT;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > MX_TTL_MAX) {
        log_warn("AIPROXY_MIXED_TTL_S=%s: want 1..%d seconds; using %d", s, MX_TTL_MAX,
                 MX_TTL_DEFAULT);
        return MX_TTL_DEFAULT;
    }
    return (int)v;
}

static void mx__key(const char *assistant_name, const char *token, char out[MX_KEY_LEN])
{
    char hex[SHA256_HEX_LEN + 1];
    const char *name = assistant_name ? assistant_name : "";

    sha256_hex(name, strlen(name), hex);
    snprintf(out, MX_KEY_LEN, "mixed:%.16s:%s", hex, token);
}

/* The token of an id of ours, copied to tok; 0 when the id is not ours. */
static int mx__token(const char *id, char tok[MX_TOKEN_LEN + 1])
{
    size_t pl = sizeof(MX_ID_PREFIX) - 1;

    if (!id || strncmp(id, MX_ID_PREFIX, pl) != 0 || strlen(id) < pl + MX_TOKEN_LEN + 2 ||
        id[pl + MX_TOKEN_LEN] != '_')
        return 0;
    for (size_t i = 0; i < MX_TOKEN_LEN; i++) {
        char c = id[pl + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
        tok[i] = c;
    }
    tok[MX_TOKEN_LEN] = '\0';
    return 1;
}

/* The token of an assistant message's first call, when it is ours. */
static int mx__msg_token(json_object *m, char tok[MX_TOKEN_LEN + 1])
{
    json_object *calls = jget_arr(m, "tool_calls");
    const char *role = jget_str(m, "role");

    if (!role || strcmp(role, "assistant") != 0 || !calls || !json_object_array_length(calls))
        return 0;
    return mx__token(jget_str(json_object_array_get_idx(calls, 0), "id"), tok);
}

/* Stores {tool_calls, results}; logs why not when it cannot. */
static void mx__store(mcpc_t *mcpc, const char *assistant_name, const char *token,
                      json_object *calls, json_object *results, int ttl_s)
{
    json_object *v = json_object_new_object();
    char key[MX_KEY_LEN];
    const char *text;
    size_t len;
    aip_err_t e;

    aip_err_clear(&e);
    if (!v || mx__set(v, "tool_calls", json_object_get(calls)) < 0 ||
        mx__set(v, "results", json_object_get(results)) < 0 ||
        !(text = json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN, &len))) {
        log_warn("mixed turn of assistant '%s': out of memory storing its MCP round",
                 assistant_name);
        goto out;
    }
    if (len > CAP_MX_ROUND) {
        log_warn("mixed turn of assistant '%s': its MCP round (%zu bytes) passes %u bytes and "
                 "is not kept: the model will not see those calls", assistant_name, len,
                 CAP_MX_ROUND);
        goto out;
    }
    mx__key(assistant_name, token, key);
    if (mcpc_kv_set(mcpc, key, text, len, ttl_s, &e) < 0)
        log_warn("mixed turn of assistant '%s': cannot keep its MCP round: %s: the model will "
                 "not see those calls", assistant_name, e.msg);
out:
    json_object_put(v);
}

int mx_run(mcpc_t *mcpc, const tn_map_t *map, const char *assistant_name, be_turn_t *turn,
           int round, int timeout_ms, int ttl_s, const tr_hooks_t *hooks,
           tr_history_t *hist, aip_err_t *e)
{
    json_object *scratch = NULL, *msgs = NULL, *results = NULL;
    char token[MX_TOKEN_LEN + 1];
    size_t n = json_object_array_length(turn->tool_calls), k = 0;
    be_turn_t ours;
    int rc = -ENOMEM;

    be_turn_init(&ours, 1);
    rid_hex(token, MX_TOKEN_LEN);
    if (!(ours.tool_calls = json_object_new_array()) || !(scratch = json_object_new_object()) ||
        !(msgs = json_object_new_array()) || mx__set(scratch, "messages", json_object_get(msgs)) < 0)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(turn->tool_calls, i);
        char gen[sizeof(MX_ID_PREFIX) + MX_TOKEN_LEN + 24];
        if (!mx__is_client(map, c)) {
            if (json_object_array_add(ours.tool_calls, json_object_get(c)) != 0) {
                json_object_put(c);
                goto nomem;
            }
            continue;
        }
        snprintf(gen, sizeof(gen), "%s%s_%zu", MX_ID_PREFIX, token, k++);
        if (mx__set(c, "id", json_object_new_string(gen)) < 0)
            goto nomem;
    }
    /* our calls run as any tool round, into a conversation of their own */
    rc = tr_run(mcpc, map, scratch, &ours, round, timeout_ms, hooks, hist, e);
    if (rc < 0)
        goto out;
    if (!(results = json_object_new_array()))
        goto nomem;
    for (size_t i = 1; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (json_object_array_add(results, json_object_get(m)) != 0) {
            json_object_put(m);
            goto nomem;
        }
    }
    mx__store(mcpc, assistant_name, token, turn->tool_calls, results, ttl_s);
    rc = 0;
    goto out;
nomem:
    rc = aip_err_oom(e);
out:
    json_object_put(results);
    json_object_put(msgs);
    json_object_put(scratch);
    be_turn_clear(&ours);
    return rc;
}

static int mx__has_id(json_object *calls, const char *id)
{
    size_t n = calls ? json_object_array_length(calls) : 0;

    for (size_t i = 0; id && i < n; i++) {
        const char *s = jget_str(json_object_array_get_idx(calls, i), "id");
        if (s && strcmp(s, id) == 0)
            return 1;
    }
    return 0;
}

/* A stored round fits the client's message: it holds every call the client
 * holds, and its results are tool messages. (Redis is shared storage: what
 * we read is checked as any peer's data.) */
static int mx__fits(json_object *m, json_object *round)
{
    json_object *mine = jget_arr(m, "tool_calls"), *calls = jget_arr(round, "tool_calls"),
                *results = jget_arr(round, "results");
    size_t n = json_object_array_length(mine);

    if (!calls || !results)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!mx__has_id(calls, jget_str(json_object_array_get_idx(mine, i), "id")))
            return 0;
    for (size_t i = 0; i < json_object_array_length(results); i++) {
        json_object *r = json_object_array_get_idx(results, i);
        const char *role = jget_str(r, "role");
        if (!role || strcmp(role, "tool") != 0 || !jget_str(r, "tool_call_id") ||
            !mx__has_id(calls, jget_str(r, "tool_call_id")))
            return 0;
    }
    return 1;
}

/* Appends a reference to v; 0 or -ENOMEM. */
static int mx__push(json_object *arr, json_object *v)
{
    if (json_object_array_add(arr, json_object_get(v)) != 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

json_object *mx_splice(json_object *msgs, json_object *rounds)
{
    size_t n = json_object_array_length(msgs);
    json_object *out = json_object_new_array_ext((int)n), *copy = NULL;

    for (size_t i = 0; out && i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *round, *results;
        char tok[MX_TOKEN_LEN + 1];
        if (!mx__msg_token(m, tok) || !(round = jget(rounds, tok)) || !mx__fits(m, round)) {
            if (mx__push(out, m) < 0)
                goto fail;
            continue;
        }
        /* the client's message (its content: the text it was shown) with
         * every call of the turn, then our calls' results */
        if (!(copy = json_object_new_object()))
            goto fail;
        json_object_object_foreach(m, key, val) {
            if (strcmp(key, "tool_calls") != 0 && mx__copy(copy, key, val) < 0)
                goto fail;
        }
        if (mx__set(copy, "tool_calls", json_object_get(jget(round, "tool_calls"))) < 0)
            goto fail;
        if (json_object_array_add(out, copy) != 0)
            goto fail;
        copy = NULL;
        results = jget_arr(round, "results");
        for (size_t k = 0; k < json_object_array_length(results); k++)
            if (mx__push(out, json_object_array_get_idx(results, k)) < 0)
                goto fail;
    }
    return out;
fail:
    json_object_put(copy);
    json_object_put(out);
    return NULL;
}

/* Reads the round of `tok` into rounds[tok]; logs a miss. 0, or -1 when
 * Redis failed (stop reading). */
static int mx__read(mcpc_t *mcpc, const char *assistant_name, const char *tok,
                    json_object *rounds)
{
    char key[MX_KEY_LEN], *text = NULL;
    json_object *round = NULL;
    size_t len = 0;
    aip_err_t e;
    int rc;

    aip_err_clear(&e);
    mx__key(assistant_name, tok, key);
    rc = mcpc_kv_get(mcpc, key, CAP_MX_ROUND, &text, &len, &e);
    if (rc == 1 && (round = json_tokener_parse(text)) &&
        json_object_is_type(round, json_type_object)) {
        mx__set(rounds, tok, round);   /* ENOMEM: this round is not re-inserted */
        round = NULL;
    } else if (rc >= 0 || rc == -EFBIG) {
        log_info("mixed turn %s of assistant '%s': its MCP round is gone (expired, or Redis "
                 "lost it): the model sees only the client's calls", tok, assistant_name);
    } else {
        log_warn("mixed turns of assistant '%s': cannot read the MCP rounds: %s: the model "
                 "sees only the client's calls", assistant_name, e.msg);
    }
    json_object_put(round);
    free(text);
    return rc < 0 && rc != -EFBIG ? -1 : 0;
}

int mx_restore(mcpc_t *mcpc, const char *assistant_name, json_object *body,
               json_object **out, aip_err_t *e)
{
    json_object *msgs = jget_arr(body, "messages"), *rounds = NULL, *spliced = NULL,
                *copy = NULL;
    size_t n = msgs ? json_object_array_length(msgs) : 0, asked = 0;
    int rc = -ENOMEM;

    *out = NULL;
    if (!(rounds = json_object_new_object()))
        goto out;
    /* the latest mixed turns first: those are the ones the model will read */
    for (size_t i = n; i-- > 0 && asked < CAP_MX_ROUNDS;) {
        char tok[MX_TOKEN_LEN + 1];
        if (!mx__msg_token(json_object_array_get_idx(msgs, i), tok) || jget(rounds, tok))
            continue;
        asked++;
        if (mx__read(mcpc, assistant_name, tok, rounds) < 0)
            break;
    }
    rc = 0;
    if (!json_object_object_length(rounds))
        goto out;
    rc = -ENOMEM;
    if (!(spliced = mx_splice(msgs, rounds)) || !(copy = json_object_new_object()))
        goto out;
    json_object_object_foreach(body, key, val) {
        if (strcmp(key, "messages") != 0 && mx__copy(copy, key, val) < 0)
            goto out;
    }
    rc = mx__set(copy, "messages", spliced);
    spliced = NULL;
    if (rc < 0)
        goto out;
    *out = copy;
    copy = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM)
        aip_err_oom(e);
    json_object_put(copy);
    json_object_put(spliced);
    json_object_put(rounds);
    return rc;
}
