/* wire_scan — a call request read without a json-c tree of the message
 * (the broker decodes one per tool call: the tree cost more than the rest
 * of the decode). No I/O. wire_req_decode tries it first. */
#ifndef AIPROXY_WIRE_SCAN_H
#define AIPROXY_WIRE_SCAN_H

#include "shared/wire.h"

#include <stddef.h>

/* Reads a well-formed "call" request of plain ASCII strings without escapes
 * (what responders send) into *out, as wire_req_decode would: 0, and *out
 * owns its strings (out->own) and arguments (out->root == out->args);
 * release with wire_req_clear. 1 for anything else (another op, an escape,
 * a bad field, ENOMEM): *out zeroed, for the full parse to decide. */
int wire_scan_call(const char *s, size_t n, wire_req_t *out);

/* A member of a JSON object as written: its name without the quotes, its
 * value's text (both point into the scanned text). */
typedef struct wire_member {
    const char *key, *val;
    size_t klen, vlen;
} wire_member_t;

/* The top-level members of the JSON object that is all of s[0..n), in
 * order, into m (at most max): their count, or -1 for anything else. The
 * grammar is RFC 8259's, strictly (what jtext_parse refuses, this refuses),
 * nesting below JSON_TOKENER_DEFAULT_DEPTH; member names and top-level
 * string values must be printable ASCII without escapes (nested values may
 * be any valid JSON), else -1 too: the caller then parses the text the long
 * way. No allocation. */
int wire_scan_members(const char *s, size_t n, wire_member_t *m, int max);

/* The last of the count members named key (json-c keeps the last of a
 * repeated key), or NULL. */
const wire_member_t *wire_scan_get(const wire_member_t *m, int count, const char *key);

/* Whether the MCP tools/call result object result[0..n) says isError:
 * 1 (true), 0 (false or absent), -1 when the scan cannot tell (not an object
 * wire_scan_members reads, or isError not a boolean): parse it instead. */
int wire_scan_is_error(const char *result, size_t n);

#endif
