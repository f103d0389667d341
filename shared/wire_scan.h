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

#endif
