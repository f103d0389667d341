/* fcgirec — FastCGI record encoding and decoding (fcgirec.h). */
#include "fcgi/cgi-front/fcgirec.h"

#include <errno.h>
#include <string.h>

#define FCGIREC_VERSION 1
#define FCGIREC_RESPONDER 1

int fcgirec_header(uint8_t *out, uint8_t type, uint16_t request_id, size_t content_len)
{
    if (content_len > FCGIREC_MAX_CONTENT)
        return -EINVAL;
    out[0] = FCGIREC_VERSION;
    out[1] = type;
    out[2] = (uint8_t)(request_id >> 8);
    out[3] = (uint8_t)request_id;
    out[4] = (uint8_t)(content_len >> 8);
    out[5] = (uint8_t)content_len;
    out[6] = 0;   /* no padding */
    out[7] = 0;
    return 0;
}

void fcgirec_begin(uint8_t *out, uint16_t request_id)
{
    (void)fcgirec_header(out, FCGIREC_BEGIN_REQUEST, request_id, 8);
    memset(out + FCGIREC_HEADER_LEN, 0, 8);
    out[FCGIREC_HEADER_LEN + 1] = FCGIREC_RESPONDER;   /* role, big-endian 16 bits */
}

/* A length as 1 byte (< 128) or 4 bytes with the high bit set. */
static size_t fcgirec__len_size(size_t n)
{
    return n < 128 ? 1 : 4;
}

static size_t fcgirec__put_len(uint8_t *p, size_t n)
{
    if (n < 128) {
        p[0] = (uint8_t)n;
        return 1;
    }
    p[0] = (uint8_t)(0x80 | (n >> 24));
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    return 4;
}

int fcgirec_pair(uint8_t *out, size_t *len, size_t cap, const char *name, size_t nlen,
                 const char *value, size_t vlen)
{
    size_t need, at = *len;

    if (nlen > 0x7fffffffu || vlen > 0x7fffffffu)
        return -EINVAL;
    need = fcgirec__len_size(nlen) + fcgirec__len_size(vlen) + nlen + vlen;
    if (at > cap || cap - at < need)
        return -ENOSPC;
    at += fcgirec__put_len(out + at, nlen);
    at += fcgirec__put_len(out + at, vlen);
    memcpy(out + at, name, nlen);
    at += nlen;
    if (vlen)
        memcpy(out + at, value, vlen);
    at += vlen;
    *len = at;
    return 0;
}

int fcgirec_env_pair(uint8_t *out, size_t *len, size_t cap, const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t nlen = eq ? (size_t)(eq - entry) : strlen(entry);
    const char *value = eq ? eq + 1 : "";

    return fcgirec_pair(out, len, cap, entry, nlen, value, strlen(value));
}

int fcgirec_parse_header(const uint8_t *in, fcgirec_header_t *h)
{
    if (in[0] != FCGIREC_VERSION)
        return -EPROTO;
    h->type = in[1];
    h->request_id = (uint16_t)((in[2] << 8) | in[3]);
    h->content_len = (uint16_t)((in[4] << 8) | in[5]);
    h->padding_len = in[6];
    return 0;
}
