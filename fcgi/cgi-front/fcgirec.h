/* fcgirec — FastCGI records for the CGI front (aiproxy-cgi): encoders and a
 * header decoder that do no I/O, so unit tests drive them directly. Only what
 * a client of a responder needs: BEGIN_REQUEST, PARAMS name-value pairs,
 * STDIN, and reading the STDOUT / STDERR / END_REQUEST records that come
 * back. libc only: the front links nothing else (docs/shared-hosting.md). */
#ifndef AIPROXY_FCGIREC_H
#define AIPROXY_FCGIREC_H

#include <stddef.h>
#include <stdint.h>

#define FCGIREC_HEADER_LEN 8
#define FCGIREC_MAX_CONTENT 65535   /* a record's content length is 16 bits */

enum {
    FCGIREC_BEGIN_REQUEST = 1,
    FCGIREC_ABORT_REQUEST = 2,
    FCGIREC_END_REQUEST = 3,
    FCGIREC_PARAMS = 4,
    FCGIREC_STDIN = 5,
    FCGIREC_STDOUT = 6,
    FCGIREC_STDERR = 7,
};

typedef struct fcgirec_header {
    uint8_t type;
    uint16_t request_id;
    uint16_t content_len;
    uint8_t padding_len;
} fcgirec_header_t;

/* Writes a record header for `type` with `content_len` bytes of content and
 * no padding into out[FCGIREC_HEADER_LEN]. Returns 0, or -EINVAL when
 * content_len exceeds FCGIREC_MAX_CONTENT. */
int fcgirec_header(uint8_t *out, uint8_t type, uint16_t request_id, size_t content_len);

/* Writes a whole BEGIN_REQUEST record (role RESPONDER, flags 0: the
 * responder closes the connection when the request ends) into out[16]. */
void fcgirec_begin(uint8_t *out, uint16_t request_id);

/* Appends the FastCGI name-value pair (name, value) (lengths of 127 and
 * below in one byte, else four) to out[*len..cap). Returns 0, or -ENOSPC
 * when it does not fit (out and *len unchanged), or -EINVAL when a length
 * does not fit in 31 bits. The caller owns every buffer. */
int fcgirec_pair(uint8_t *out, size_t *len, size_t cap, const char *name, size_t nlen,
                 const char *value, size_t vlen);

/* Appends "NAME=VALUE" (an environ entry; no '=' means an empty value) as a
 * pair, as fcgirec_pair. */
int fcgirec_env_pair(uint8_t *out, size_t *len, size_t cap, const char *entry);

/* Decodes in[FCGIREC_HEADER_LEN]. Returns 0, or -EPROTO for a version other
 * than 1. */
int fcgirec_parse_header(const uint8_t *in, fcgirec_header_t *h);

#endif
