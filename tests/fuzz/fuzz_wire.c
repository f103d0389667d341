/* fuzz_wire — shared/wire.h: decode of broker requests and replies.
 *
 * The input goes to both decoders. A message one of them accepts is encoded
 * again from the decoded fields and decoded a second time: the fields must
 * come back the same (the responder and the broker agree on the protocol). */
#include "shared/wire.h"
#include "shared/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Same JSON text. Not json_object_equal: json-c reads the invalid number
 * "1E" as the double 1, prints it "1", and reads that back as an int; what
 * crosses the wire is the text, and that is stable. */
static int same_json(json_object *a, json_object *b)
{
    return strcmp(json_object_to_json_string(a), json_object_to_json_string(b)) == 0;
}

/* op "sampled": encoded again, the answer comes back the same (an error
 * the encoder need not cut or clean too). */
static void sampled_round_trip(const wire_req_t *r)
{
    wire_req_t back;
    char err[128];
    char *text = wire_req_sampled(r->id, r->reply, r->server, r->deadline, r->sid, r->result, r->error);
    size_t elen = r->error ? strlen(r->error) : 0;

    if (!text || wire_req_decode(text, strlen(text), &back, err, sizeof err) != 0 ||
        back.op != WIRE_OP_SAMPLED)
        abort();
    if (strcmp(back.id, r->id) != 0 || back.sid != r->sid || !back.result != !r->result ||
        (r->result && !same_json(back.result, r->result)) ||
        (r->error && elen <= CAP_WIRE_PROGRESS_TEXT && utf8_valid(r->error, elen) &&
         strcmp(back.error, r->error) != 0))
        abort();
    wire_req_clear(&back);
    free(text);
}

static void req_round_trip(const wire_req_t *r)
{
    wire_req_t back;
    char err[128];
    char *text;

    if (r->op == WIRE_OP_SAMPLED) {
        sampled_round_trip(r);
        return;
    }
    text = wire_req_encode(r->op, r->id, r->reply, r->server, r->tool, r->args, r->deadline);

    if (!text || wire_req_decode(text, strlen(text), &back, err, sizeof err) != 0)
        abort();
    if (back.op != r->op || strcmp(back.id, r->id) != 0 || strcmp(back.reply, r->reply) != 0 ||
        strcmp(back.server, r->server) != 0 || back.deadline != r->deadline ||
        (r->op == WIRE_OP_CALL && (strcmp(back.tool, r->tool) != 0 ||
                                   !same_json(back.args, r->args))))
        abort();
    wire_req_clear(&back);
    free(text);
}

/* A progress report: encoded again, the numbers come back the same (a
 * negative total means none), and a message the encoder need not cut or
 * clean (valid UTF-8, within its cap) too. */
static void progress_round_trip(const wire_reply_t *r)
{
    wire_reply_t back;
    char err[128];
    char *text = wire_reply_progress(r->id, r->progress, r->total, r->message, r->left_ms);
    size_t mlen = r->message ? strlen(r->message) : 0;

    if (!text || wire_reply_decode(text, strlen(text), &back, err, sizeof err) != 0 || !back.is_progress)
        abort();
    if (strcmp(back.id, r->id) != 0 || back.progress != r->progress || back.left_ms != r->left_ms ||
        (r->total >= 0 ? back.total != r->total : back.total >= 0) || !r->message != !back.message ||
        (r->message && mlen <= CAP_WIRE_PROGRESS_TEXT && utf8_valid(r->message, mlen) &&
         strcmp(back.message, r->message) != 0))
        abort();
    wire_reply_clear(&back);
    free(text);
}

static void reply_round_trip(const wire_reply_t *r)
{
    wire_reply_t back;
    char err[128];
    char *text;

    if (r->is_progress) {
        progress_round_trip(r);
        return;
    }
    if (r->is_sampling) {
        text = wire_reply_sampling(r->id, r->sid, r->params);
        if (!text || wire_reply_decode(text, strlen(text), &back, err, sizeof err) != 0 ||
            !back.is_sampling || back.sid != r->sid || strcmp(back.id, r->id) != 0 ||
            !same_json(back.params, r->params))
            abort();
        wire_reply_clear(&back);
        free(text);
        return;
    }
    text = !r->ok     ? wire_reply_error(r->id, r->error)
                 : r->result ? wire_reply_result(r->id, r->result)
                             : wire_reply_tools(r->id, r->tools);

    if (!text || wire_reply_decode(text, strlen(text), &back, err, sizeof err) != 0)
        abort();
    if (strcmp(back.id, r->id) != 0 || back.ok != r->ok ||
        (!r->ok && strcmp(back.error, r->error) != 0) ||
        (r->result && !same_json(back.result, r->result)) ||
        (r->tools && !same_json(back.tools, r->tools)))
        abort();
    wire_reply_clear(&back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_req_t req;
    wire_reply_t rep;
    char err[256];

    err[0] = '\0';
    if (wire_req_decode((const char *)data, size, &req, err, sizeof err) == 0) {
        req_round_trip(&req);
        wire_req_clear(&req);
    } else if (!err[0]) {
        abort();    /* a refusal names the field */
    }
    err[0] = '\0';
    if (wire_reply_decode((const char *)data, size, &rep, err, sizeof err) == 0) {
        reply_round_trip(&rep);
        wire_reply_clear(&rep);
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
