/* fuzz_ws_frame.c: the WebSocket frame reader on random bytes.
 *
 * The input is parsed twice, once as one buffer and once as a stream cut
 * into chunks (sizes taken from the input), and both must produce the same
 * events: the reader may never depend on how the socket splits the bytes.
 * Every event must respect the limits: messages within max_message, text
 * that is UTF-8, control payloads of at most 125 bytes, valid close codes.
 * The UTF-8 check is also compared fed whole and fed in two pieces. */
#include "ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS 256

typedef struct {
    ws_event_kind kind;
    int opcode;
    uint16_t code;
    size_t len;
    uint8_t *data;
} rec;

static void
check_event(const ws_reader *r, const ws_event *ev)
{
    switch (ev->kind) {
    case WS_EV_MESSAGE:
        if (ev->len > r->max_message)
            abort();
        if (ev->opcode == WS_OP_TEXT && !ws_utf8_valid(ev->data, ev->len))
            abort();
        if (ev->opcode != WS_OP_TEXT && ev->opcode != WS_OP_BINARY)
            abort();
        break;
    case WS_EV_PING:
    case WS_EV_PONG:
        if (ev->len > 125)
            abort();
        break;
    case WS_EV_CLOSE:
        if (ev->code != WS_CLOSE_NO_STATUS && !ws_close_code_valid(ev->code))
            abort();
        if (ev->len > 123 || !ws_utf8_valid(ev->data, ev->len))
            abort();
        break;
    case WS_EV_ERROR:
        if (ev->reason == NULL || !ws_close_code_valid(ev->code))
            abort();
        break;
    default: break;
    }
}

/* Parses buf as chunks of the given sizes (cycled); records the events. */
static size_t
run(const uint8_t *in, size_t len, size_t max, const uint8_t *chunks, size_t nchunks, rec *out)
{
    ws_reader r;
    uint8_t *acc = malloc(len + 1);
    size_t have = 0, fed = 0, n = 0, ci = 0;
    int done = 0;

    memset(&r, 0, sizeof r);
    r.max_message = max;
    r.require_mask = 1;
    while (!done && n < MAX_EVENTS) {
        size_t step = nchunks ? (size_t)chunks[ci++ % nchunks] + 1 : len;
        size_t used;
        ws_event ev;

        if (fed < len) {
            if (step > len - fed)
                step = len - fed;
            memcpy(acc + have, in + fed, step);
            have += step;
            fed += step;
        }
        for (;;) {
            ws_event_kind k = ws_reader_next(&r, acc, have, &used, &ev);
            if (used > have || (k == WS_EV_NEED_MORE && used != 0))
                abort();
            if (k == WS_EV_NEED_MORE)
                break;
            check_event(&r, &ev);
            if (k != WS_EV_CONTINUE) {
                out[n].kind = k;
                out[n].opcode = ev.opcode;
                out[n].code = ev.code;
                out[n].len = ev.len;
                out[n].data = malloc(ev.len + 1);
                if (ev.len)
                    memcpy(out[n].data, ev.data, ev.len);
                n++;
            }
            memmove(acc, acc + used, have - used);
            have -= used;
            if (k == WS_EV_ERROR || k == WS_EV_CLOSE || n == MAX_EVENTS) {
                done = 1;
                break;
            }
        }
        if (fed == len)
            break;
    }
    ws_reader_free(&r);
    free(acc);
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rec a[MAX_EVENTS], b[MAX_EVENTS];
    size_t max, nchunks, na, nb, i;
    const uint8_t *chunks, *in;
    size_t len;
    ws_utf8 u = {0, 0x80, 0xBF};
    char accept[29];

    if (size < 3)
        return 0;
    max = 1 + (size_t)data[0] * 8;
    nchunks = data[1] % 8;
    if (size < 2 + nchunks)
        return 0;
    chunks = data + 2;
    in = data + 2 + nchunks;
    len = size - 2 - nchunks;

    na = run(in, len, max, NULL, 0, a);
    nb = run(in, len, max, chunks, nchunks, b);
    /* A stream cut short may stop earlier, never differently. */
    if (nb != na)
        abort();
    for (i = 0; i < na; i++) {
        if (a[i].kind != b[i].kind || a[i].opcode != b[i].opcode || a[i].code != b[i].code ||
            a[i].len != b[i].len || memcmp(a[i].data, b[i].data, a[i].len) != 0)
            abort();
    }
    for (i = 0; i < na; i++)
        free(a[i].data);
    for (i = 0; i < nb; i++)
        free(b[i].data);

    /* UTF-8: whole versus two pieces. */
    if (ws_utf8_feed(&u, in, len / 2) == 0 && ws_utf8_feed(&u, in + len / 2, len - len / 2) == 0) {
        if (ws_utf8_complete(&u) != ws_utf8_valid(in, len))
            abort();
    } else if (ws_utf8_valid(in, len)) {
        abort();
    }

    /* Handshake helpers never read past a NUL. */
    {
        char *s = malloc(len + 1);
        memcpy(s, in, len);
        s[len] = '\0';
        if (ws_accept_key(s, accept) == 0 && strlen(accept) != 28)
            abort();
        (void)ws_header_has_token(s, "websocket");
        free(s);
    }
    return 0;
}
