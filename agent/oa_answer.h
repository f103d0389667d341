/* oa_answer — a chat.completion answer of the common shape (text content,
 * finish_reason, usage; no tool calls) read in one pass without a json-c
 * tree. be_openai's whole-answer parse tries it first: the upstream's answer
 * was the largest json-c parse of a pass-through request. Anything it is not
 * sure of (tool calls, \u escapes, a duplicate member, JSON that is not
 * strictly valid, a number past 18 digits, a cap reached) it leaves to the
 * json-c parse, which then decides exactly as it always did. Pure: no I/O. */
#ifndef AIPROXY_OA_ANSWER_H
#define AIPROXY_OA_ANSWER_H

#include "agent/backend.h"

#include <stddef.h>

/* Reads body[0..len) into `turn` (content appended, finish_reason,
 * prompt/completion tokens and has_usage set as be_openai's json-c parse
 * sets them). Returns 0 when read, 1 when the answer is for the json-c
 * parse (turn then unchanged). */
int oa_answer_read(const char *body, size_t len, be_turn_t *turn);

#endif
