/*
 * ws_frame.c: RFC 6455 frames without I/O.
 *
 * The reader takes whatever bytes the socket gave and returns at most one
 * event per call. It only looks at a frame once the whole frame is in the
 * input, so the payload is unmasked in place and a single-frame message
 * (nearly all of them) is handed over without a copy. Fragmented messages
 * are reassembled in the reader's own buffer. Every limit is checked from
 * the header alone, before the payload is waited for: a peer announcing a
 * frame past the message limit is failed (1009) at once instead of being
 * buffered.
 *
 * Also here: the UTF-8 check of text messages (incremental, because a
 * character may straddle two fragments), the server frame header, and the
 * handshake's Sec-WebSocket-Accept value (SHA-1 from gnutls, which
 * libmicrohttpd links already). Unit-tested (tests/unit/test_ws_frame.c) and
 * fuzzed (tests/fuzz/fuzz_ws_frame.c).
 */
#include "ws.h"
#include "edge/edge.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------------
 * UTF-8 (RFC 3629): the table of well-formed byte sequences, checked one
 * byte at a time. The ranges of the second byte are what exclude overlongs
 * (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
 */

int
ws_utf8_feed(ws_utf8 *u, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t b = p[i];

        if (u->need > 0) {
            if (b < u->lo || b > u->hi)
                return -1;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xBF;
            continue;
        }
        if (b < 0x80)
            continue;
        u->lo = 0x80;
        u->hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            u->need = 1;
        } else if (b == 0xE0) {
            u->need = 2;
            u->lo = 0xA0;
        } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
            u->need = 2;
        } else if (b == 0xED) {
            u->need = 2;
            u->hi = 0x9F;
        } else if (b == 0xF0) {
            u->need = 3;
            u->lo = 0x90;
        } else if (b >= 0xF1 && b <= 0xF3) {
            u->need = 3;
        } else if (b == 0xF4) {
            u->need = 3;
            u->hi = 0x8F;
        } else {
            return -1; /* 80..C1 as a first byte, F5..FF */
        }
    }
    return 0;
}

int
ws_utf8_complete(const ws_utf8 *u)
{
    return u->need == 0;
}

int
ws_utf8_valid(const uint8_t *p, size_t n)
{
    ws_utf8 u = {0, 0x80, 0xBF};
    return ws_utf8_feed(&u, p, n) == 0 && ws_utf8_complete(&u);
}

/* ---------------------------------------------------------------------------
 * Reader.
 */

static ws_event_kind
reader_fail(ws_event *ev, uint16_t code, const char *reason)
{
    ev->kind = WS_EV_ERROR;
    ev->code = code;
    ev->reason = reason;
    return WS_EV_ERROR;
}

/* Appends to the reassembly buffer; the caller checked the limit. */
static int
reader_append(ws_reader *r, const uint8_t *p, size_t n)
{
    if (r->msg_len + n > r->msg_cap) {
        size_t cap = r->msg_cap ? r->msg_cap : 1024;
        uint8_t *b;

        while (cap < r->msg_len + n)
            cap *= 2;
        if (cap > r->max_message)
            cap = r->max_message;
        b = realloc(r->msg, cap);
        if (b == NULL)
            return -1;
        r->msg = b;
        r->msg_cap = cap;
    }
    if (n > 0)
        memcpy(r->msg + r->msg_len, p, n);
    r->msg_len += n;
    return 0;
}

/* Forgets the message delivered last. A big buffer is released so that an
 * idle connection goes back to costing little. */
static void
reader_reset_message(ws_reader *r)
{
    r->msg_len = 0;
    r->in_message = 0;
    r->deliver_reset = 0;
    if (r->msg_cap > 64 * 1024) {
        free(r->msg);
        r->msg = NULL;
        r->msg_cap = 0;
    }
}

size_t
ws_reader_max_frame(const ws_reader *r)
{
    return r->max_message + 14;
}

ws_event_kind
ws_reader_next(ws_reader *r, uint8_t *in, size_t len, size_t *used, ws_event *ev)
{
    uint64_t plen;
    size_t hdr = 2, so_far, i;
    int fin, op, masked, control;
    uint8_t *payload;

    memset(ev, 0, sizeof *ev);
    *used = 0;
    if (r->deliver_reset)
        reader_reset_message(r);
    if (len < 2)
        return ev->kind = WS_EV_NEED_MORE;

    fin = (in[0] & 0x80) != 0;
    op = in[0] & 0x0F;
    masked = (in[1] & 0x80) != 0;
    plen = in[1] & 0x7F;
    control = (op & 0x8) != 0;

    /* Everything decidable from the first two bytes. */
    if (in[0] & 0x70)
        return reader_fail(ev, WS_CLOSE_PROTOCOL, "reserved bits set without an extension");
    if (op != WS_OP_CONT && op != WS_OP_TEXT && op != WS_OP_BINARY && op != WS_OP_CLOSE &&
        op != WS_OP_PING && op != WS_OP_PONG)
        return reader_fail(ev, WS_CLOSE_PROTOCOL, "reserved opcode");
    if (r->require_mask && !masked)
        return reader_fail(ev, WS_CLOSE_PROTOCOL, "client frames must be masked");
    if (control && !fin)
        return reader_fail(ev, WS_CLOSE_PROTOCOL, "fragmented control frame");
    if (control && plen > 125)
        return reader_fail(ev, WS_CLOSE_PROTOCOL, "control frame over 125 bytes");
    if (!control && op == WS_OP_CONT && !r->in_message)
        return reader_fail(ev, WS_CLOSE_PROTOCOL, "continuation frame without a message");
    if (!control && op != WS_OP_CONT && r->in_message)
        return reader_fail(ev, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");

    if (plen == 126) {
        if (len < 4)
            return ev->kind = WS_EV_NEED_MORE;
        plen = ((uint64_t)in[2] << 8) | in[3];
        hdr = 4;
    } else if (plen == 127) {
        if (len < 10)
            return ev->kind = WS_EV_NEED_MORE;
        plen = 0;
        for (i = 2; i < 10; i++)
            plen = (plen << 8) | in[i];
        if (plen >> 63)
            return reader_fail(ev, WS_CLOSE_PROTOCOL, "frame length with the top bit set");
        hdr = 10;
    }
    /* The message limit counts all fragments: refuse before buffering. */
    so_far = (!control && op == WS_OP_CONT) ? r->msg_len : 0;
    if (!control && plen > (uint64_t)(r->max_message - so_far))
        return reader_fail(ev, WS_CLOSE_TOO_BIG, "message too big");
    if (masked)
        hdr += 4;
    if (len < hdr || (uint64_t)(len - hdr) < plen)
        return ev->kind = WS_EV_NEED_MORE;

    payload = in + hdr;
    if (masked) {
        const uint8_t *key = in + hdr - 4;
        for (i = 0; i < plen; i++)
            payload[i] ^= key[i & 3];
    }
    *used = hdr + (size_t)plen;
    ev->data = payload;
    ev->len = (size_t)plen;

    switch (op) {
    case WS_OP_PING: return ev->kind = WS_EV_PING;
    case WS_OP_PONG: return ev->kind = WS_EV_PONG;
    case WS_OP_CLOSE:
        ev->code = WS_CLOSE_NO_STATUS;
        if (plen == 1) {
            *used = 0;
            return reader_fail(ev, WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
        }
        if (plen >= 2) {
            unsigned code = ((unsigned)payload[0] << 8) | payload[1];
            if (!ws_close_code_valid(code)) {
                *used = 0;
                return reader_fail(ev, WS_CLOSE_PROTOCOL, "invalid close code");
            }
            if (!ws_utf8_valid(payload + 2, (size_t)plen - 2)) {
                *used = 0;
                return reader_fail(ev, WS_CLOSE_BAD_DATA, "close reason is not UTF-8");
            }
            ev->code = (uint16_t)code;
            ev->data = payload + 2;
            ev->len = (size_t)plen - 2;
        }
        return ev->kind = WS_EV_CLOSE;
    default: break;
    }

    /* A whole message in one frame: no copy. */
    if (op != WS_OP_CONT && fin) {
        if (op == WS_OP_TEXT && !ws_utf8_valid(payload, (size_t)plen)) {
            *used = 0;
            return reader_fail(ev, WS_CLOSE_BAD_DATA, "text message is not UTF-8");
        }
        ev->opcode = op;
        return ev->kind = WS_EV_MESSAGE;
    }
    if (op != WS_OP_CONT) {
        r->in_message = 1;
        r->msg_opcode = op;
        r->msg_len = 0;
        r->utf8 = (ws_utf8){0, 0x80, 0xBF};
    }
    if (r->msg_opcode == WS_OP_TEXT && ws_utf8_feed(&r->utf8, payload, (size_t)plen) != 0) {
        *used = 0;
        return reader_fail(ev, WS_CLOSE_BAD_DATA, "text message is not UTF-8");
    }
    if (reader_append(r, payload, (size_t)plen) != 0) {
        *used = 0;
        return reader_fail(ev, WS_CLOSE_INTERNAL, "out of memory");
    }
    if (!fin) {
        ev->data = NULL;
        ev->len = 0;
        return ev->kind = WS_EV_CONTINUE;
    }
    if (r->msg_opcode == WS_OP_TEXT && !ws_utf8_complete(&r->utf8)) {
        *used = 0;
        return reader_fail(ev, WS_CLOSE_BAD_DATA, "text message ends inside a character");
    }
    r->deliver_reset = 1;
    ev->opcode = r->msg_opcode;
    ev->data = r->msg;
    ev->len = r->msg_len;
    return ev->kind = WS_EV_MESSAGE;
}

void
ws_reader_free(ws_reader *r)
{
    free(r->msg);
    r->msg = NULL;
    r->msg_len = r->msg_cap = 0;
    r->in_message = 0;
    r->deliver_reset = 0;
}

/* ---------------------------------------------------------------------------
 * Writer.
 */

size_t
ws_frame_header(uint8_t *out, int fin, int opcode, uint64_t len)
{
    int i;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

int
ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* ---------------------------------------------------------------------------
 * Handshake.
 */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i;
    char *o = out;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = B64[(v >> 6) & 63];
        *o++ = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
}

int
ws_accept_key(const char *key, char out[29])
{
    char buf[24 + sizeof WS_GUID];
    uint8_t digest[20];
    size_t i;

    /* 16 bytes in base64: 22 characters, the last one carrying 2 bits, and
     * "==". */
    if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return -1;
    for (i = 0; i < 22; i++)
        if (key[i] == '\0' || strchr(B64, key[i]) == NULL)
            return -1;
    memcpy(buf, key, 24);
    memcpy(buf + 24, WS_GUID, sizeof WS_GUID - 1);
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, buf, 24 + sizeof WS_GUID - 1, digest) != 0)
        return -1;
    base64_encode(digest, sizeof digest, out);
    return 0;
}

int
ws_header_has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = value;

    if (value == NULL)
        return 0;
    while (*p) {
        const char *end;
        size_t n;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        end = p;
        while (*end && *end != ',')
            end++;
        n = (size_t)(end - p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == tlen && n > 0 && strncasecmp(p, token, n) == 0)
            return 1;
        p = end;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Origin check of the handshake.
 */

int
gw_origin_allowed(const char *origin, const char *host, const char *allowed)
{
    /* Programs (curl, autobahn under node) send no Origin: only browsers
     * do, and only a browser can be made to connect on a page's behalf.
     * The matching is edge/origin.c's, the same as for HTTP calls. */
    if (origin == NULL)
        return 1;
    /* "*" may stand among listed origins (GATEWAY_WS_ORIGINS=* joined with
     * GATEWAY_CORS_ORIGINS). */
    if (gw_origin_listed("*", allowed))
        return 1;
    return gw_origin_known(origin, host, allowed);
}

int
gw_origin_known(const char *origin, const char *host, const char *allowed)
{
    return origin == NULL || gw_origin_same(origin, host) ||
           (strcmp(origin, "*") != 0 && gw_origin_listed(origin, allowed));
}

