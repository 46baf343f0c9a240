/* test_ws_frame.c: RFC 6455 frames, UTF-8 and the handshake values.
 * Includes gateway/ws/ws_frame.c so its functions are tested as compiled there. */
#include "../../gateway/ws/ws_frame.c"

#include "check.h"

#include <stdlib.h>

/* A client frame: header, mask key (when masked) and the masked payload. */
static size_t
mk(uint8_t *out, int fin, int rsv, int op, int masked, const void *payload, size_t len)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = ws_frame_header(out, fin, op, len), i;

    out[0] |= (uint8_t)(rsv << 4);
    if (masked) {
        out[1] |= 0x80;
        memcpy(out + h, key, 4);
        h += 4;
    }
    for (i = 0; i < len; i++)
        out[h + i] = ((const uint8_t *)payload)[i] ^ (masked ? key[i & 3] : 0);
    return h + len;
}

static ws_reader
reader(size_t max)
{
    ws_reader r;
    memset(&r, 0, sizeof r);
    r.max_message = max;
    r.require_mask = 1;
    return r;
}

/* Feeds one buffer and returns the first event that is not CONTINUE. */
static ws_event_kind
feed(ws_reader *r, uint8_t *buf, size_t len, ws_event *ev, size_t *total)
{
    size_t off = 0, used;
    ws_event_kind k;

    do {
        k = ws_reader_next(r, buf + off, len - off, &used, ev);
        off += used;
    } while (k == WS_EV_CONTINUE);
    if (total)
        *total = off;
    return k;
}

static void
expect_error(const uint8_t *frame, size_t len, size_t max, uint16_t code, const char *what)
{
    uint8_t buf[512];
    ws_reader r = reader(max);
    ws_event ev;
    size_t used;
    ws_event_kind k;

    memcpy(buf, frame, len);
    k = ws_reader_next(&r, buf, len, &used, &ev);
    if (k != WS_EV_ERROR || ev.code != code)
        fprintf(stderr, "case: %s\n", what);
    CHECK_INT(k, WS_EV_ERROR);
    CHECK_INT(ev.code, code);
    CHECK_INT(used, 0);
    CHECK(ev.reason != NULL);
    ws_reader_free(&r);
}

static void
test_accept_key(void)
{
    char out[29];

    /* RFC 6455 §1.3 */
    CHECK_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK_INT(ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out), 0);
    CHECK_STR(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    CHECK_INT(ws_accept_key(NULL, out), -1);
    CHECK_INT(ws_accept_key("", out), -1);
    CHECK_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ", out), -1);    /* no padding */
    CHECK_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ===", out), -1); /* too long */
    CHECK_INT(ws_accept_key("dGhlIHNhbXBsZSBub2*jZQ==", out), -1);  /* not base64 */
    CHECK_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=A", out), -1);  /* padding */

    CHECK_INT(ws_header_has_token("keep-alive, Upgrade", "upgrade"), 1);
    CHECK_INT(ws_header_has_token("Upgrade", "upgrade"), 1);
    CHECK_INT(ws_header_has_token(" websocket ", "websocket"), 1);
    CHECK_INT(ws_header_has_token("wamp.2.msgpack,wamp.2.json", "wamp.2.json"), 1);
    CHECK_INT(ws_header_has_token("wamp.2.json.batched", "wamp.2.json"), 0);
    CHECK_INT(ws_header_has_token("Upgrade2", "upgrade"), 0);
    CHECK_INT(ws_header_has_token("", "upgrade"), 0);
    CHECK_INT(ws_header_has_token(",,", "upgrade"), 0);
    CHECK_INT(ws_header_has_token(NULL, "upgrade"), 0);
}

static void
test_header(void)
{
    uint8_t h[10];

    CHECK_INT(ws_frame_header(h, 1, WS_OP_TEXT, 0), 2);
    CHECK_INT(h[0], 0x81);
    CHECK_INT(h[1], 0);
    CHECK_INT(ws_frame_header(h, 1, WS_OP_TEXT, 125), 2);
    CHECK_INT(h[1], 125);
    CHECK_INT(ws_frame_header(h, 0, WS_OP_BINARY, 126), 4);
    CHECK_INT(h[0], 0x02);
    CHECK_INT(h[1], 126);
    CHECK_INT(h[2], 0);
    CHECK_INT(h[3], 126);
    CHECK_INT(ws_frame_header(h, 1, WS_OP_TEXT, 65535), 4);
    CHECK_INT(h[2], 0xff);
    CHECK_INT(h[3], 0xff);
    CHECK_INT(ws_frame_header(h, 1, WS_OP_TEXT, 65536), 10);
    CHECK_INT(h[1], 127);
    CHECK_INT(h[7], 1);
    CHECK_INT(h[8], 0);
    CHECK_INT(h[9], 0);
}

static void
test_utf8(void)
{
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"", 1},
        {"hello", 1},
        {"\xc3\xa9t\xc3\xa9", 1}, /* été */
        {"\xe2\x82\xac", 1},      /* € */
        {"\xf0\x9f\x98\x80", 1},  /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 1},  /* U+10FFFF */
        {"\xed\x9f\xbf", 1},      /* U+D7FF */
        {"\xee\x80\x80", 1},      /* U+E000 */
        {"\x80", 0},              /* stray continuation */
        {"\xc0\x80", 0},          /* overlong NUL */
        {"\xc1\xbf", 0},          /* overlong */
        {"\xe0\x80\x80", 0},      /* overlong */
        {"\xe0\x9f\xbf", 0},      /* overlong */
        {"\xf0\x8f\xbf\xbf", 0},  /* overlong */
        {"\xed\xa0\x80", 0},      /* surrogate U+D800 */
        {"\xed\xbf\xbf", 0},      /* surrogate U+DFFF */
        {"\xf4\x90\x80\x80", 0},  /* U+110000 */
        {"\xf5\x80\x80\x80", 0},
        {"\xff", 0},
        {"\xe2\x82", 0}, /* truncated */
        {"\xe2\x28\xa1", 0},
        {"a\xc3", 0},
    };
    size_t i;
    ws_utf8 u = {0, 0x80, 0xBF};

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = ws_utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s));
        if (got != cases[i].ok)
            fprintf(stderr, "utf8 case %zu\n", i);
        CHECK_INT(got, cases[i].ok);
    }
    /* A character split over three feeds. */
    CHECK_INT(ws_utf8_feed(&u, (const uint8_t *)"\xf0\x9f", 2), 0);
    CHECK_INT(ws_utf8_complete(&u), 0);
    CHECK_INT(ws_utf8_feed(&u, (const uint8_t *)"\x98", 1), 0);
    CHECK_INT(ws_utf8_feed(&u, (const uint8_t *)"\x80", 1), 0);
    CHECK_INT(ws_utf8_complete(&u), 1);
    /* Fails as soon as the second byte is impossible. */
    u = (ws_utf8){0, 0x80, 0xBF};
    CHECK_INT(ws_utf8_feed(&u, (const uint8_t *)"\xed", 1), 0);
    CHECK_INT(ws_utf8_feed(&u, (const uint8_t *)"\xa0", 1), -1);
}

static void
test_single_messages(void)
{
    uint8_t buf[70000 + 14];
    ws_reader r = reader(1 << 20);
    ws_event ev;
    size_t len, used, i;
    char big[70000];

    len = mk(buf, 1, 0, WS_OP_TEXT, 1, "[1,\"realm1\",{}]", 15);
    CHECK_INT(ws_reader_next(&r, buf, len, &used, &ev), WS_EV_MESSAGE);
    CHECK_INT(used, len);
    CHECK_INT(ev.opcode, WS_OP_TEXT);
    CHECK_INT(ev.len, 15);
    CHECK(memcmp(ev.data, "[1,\"realm1\",{}]", 15) == 0);

    /* Empty text message. */
    len = mk(buf, 1, 0, WS_OP_TEXT, 1, "", 0);
    CHECK_INT(ws_reader_next(&r, buf, len, &used, &ev), WS_EV_MESSAGE);
    CHECK_INT(ev.len, 0);

    /* Binary is not checked for UTF-8. */
    len = mk(buf, 1, 0, WS_OP_BINARY, 1, "\xff\xfe", 2);
    CHECK_INT(ws_reader_next(&r, buf, len, &used, &ev), WS_EV_MESSAGE);
    CHECK_INT(ev.opcode, WS_OP_BINARY);

    /* 16-bit and 64-bit lengths. */
    for (i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    len = mk(buf, 1, 0, WS_OP_TEXT, 1, big, 300);
    CHECK_INT(ws_reader_next(&r, buf, len, &used, &ev), WS_EV_MESSAGE);
    CHECK_INT(ev.len, 300);
    CHECK(memcmp(ev.data, big, 300) == 0);
    len = mk(buf, 1, 0, WS_OP_TEXT, 1, big, sizeof big);
    CHECK_INT(len, sizeof big + 14);
    CHECK_INT(ws_reader_next(&r, buf, len, &used, &ev), WS_EV_MESSAGE);
    CHECK_INT(ev.len, sizeof big);
    CHECK(memcmp(ev.data, big, sizeof big) == 0);

    /* Every prefix of a frame is "need more" and consumes nothing. */
    len = mk(buf, 1, 0, WS_OP_TEXT, 1, big, 300);
    for (i = 0; i < len; i++) {
        CHECK_INT(ws_reader_next(&r, buf, i, &used, &ev), WS_EV_NEED_MORE);
        CHECK_INT(used, 0);
    }

    /* Two frames in one buffer: one at a time. */
    len = mk(buf, 1, 0, WS_OP_TEXT, 1, "ab", 2);
    len += mk(buf + len, 1, 0, WS_OP_PING, 1, "p", 1);
    CHECK_INT(ws_reader_next(&r, buf, len, &used, &ev), WS_EV_MESSAGE);
    CHECK_INT(used, 8);
    CHECK_INT(ws_reader_next(&r, buf + used, len - used, &used, &ev), WS_EV_PING);
    CHECK_INT(ev.len, 1);
    CHECK_INT(ev.data[0], 'p');
    ws_reader_free(&r);
}

static void
test_fragments(void)
{
    uint8_t buf[1024];
    ws_reader r = reader(16);
    ws_event ev;
    size_t len, total;

    /* "Hel" + ping + "lo" + "!" */
    len = mk(buf, 0, 0, WS_OP_TEXT, 1, "Hel", 3);
    len += mk(buf + len, 1, 0, WS_OP_PING, 1, "x", 1);
    len += mk(buf + len, 0, 0, WS_OP_CONT, 1, "lo", 2);
    len += mk(buf + len, 1, 0, WS_OP_CONT, 1, "!", 1);
    CHECK_INT(feed(&r, buf, len, &ev, &total), WS_EV_PING);
    CHECK_INT(feed(&r, buf + total, len - total, &ev, NULL), WS_EV_MESSAGE);
    CHECK_INT(ev.opcode, WS_OP_TEXT);
    CHECK_INT(ev.len, 6);
    CHECK(memcmp(ev.data, "Hello!", 6) == 0);

    /* A character split across fragments is fine. */
    len = mk(buf, 0, 0, WS_OP_TEXT, 1, "\xe2\x82", 2);
    len += mk(buf + len, 1, 0, WS_OP_CONT, 1, "\xac", 1);
    CHECK_INT(feed(&r, buf, len, &ev, NULL), WS_EV_MESSAGE);
    CHECK_INT(ev.len, 3);

    /* An impossible sequence fails in the first fragment already. */
    len = mk(buf, 0, 0, WS_OP_TEXT, 1, "a\xc0", 2);
    CHECK_INT(feed(&r, buf, len, &ev, NULL), WS_EV_ERROR);
    CHECK_INT(ev.code, WS_CLOSE_BAD_DATA);
    ws_reader_free(&r);

    /* Ending inside a character. */
    r = reader(16);
    len = mk(buf, 0, 0, WS_OP_TEXT, 1, "a", 1);
    len += mk(buf + len, 1, 0, WS_OP_CONT, 1, "\xe2\x82", 2);
    CHECK_INT(feed(&r, buf, len, &ev, NULL), WS_EV_ERROR);
    CHECK_INT(ev.code, WS_CLOSE_BAD_DATA);
    ws_reader_free(&r);

    /* The limit counts all fragments: 10 + 7 > 16, refused from the header. */
    r = reader(16);
    len = mk(buf, 0, 0, WS_OP_BINARY, 1, "0123456789", 10);
    CHECK_INT(feed(&r, buf, len, &ev, &total), WS_EV_NEED_MORE);
    CHECK_INT(total, len);
    len = mk(buf, 1, 0, WS_OP_CONT, 1, "0123456", 7);
    CHECK_INT(feed(&r, buf, 2, &ev, NULL), WS_EV_ERROR);
    CHECK_INT(ev.code, WS_CLOSE_TOO_BIG);
    ws_reader_free(&r);

    /* Continuation without a start; a new message inside a fragmented one. */
    r = reader(16);
    len = mk(buf, 1, 0, WS_OP_CONT, 1, "x", 1);
    CHECK_INT(feed(&r, buf, len, &ev, NULL), WS_EV_ERROR);
    CHECK_INT(ev.code, WS_CLOSE_PROTOCOL);
    len = mk(buf, 0, 0, WS_OP_TEXT, 1, "x", 1);
    len += mk(buf + len, 1, 0, WS_OP_TEXT, 1, "y", 1);
    CHECK_INT(feed(&r, buf, len, &ev, NULL), WS_EV_ERROR);
    CHECK_INT(ev.code, WS_CLOSE_PROTOCOL);
    ws_reader_free(&r);

    /* After a reassembled message the reader starts clean. */
    r = reader(16);
    len = mk(buf, 0, 0, WS_OP_TEXT, 1, "ab", 2);
    len += mk(buf + len, 1, 0, WS_OP_CONT, 1, "c", 1);
    len += mk(buf + len, 1, 0, WS_OP_TEXT, 1, "d", 1);
    CHECK_INT(feed(&r, buf, len, &ev, &total), WS_EV_MESSAGE);
    CHECK_INT(ev.len, 3);
    CHECK_INT(feed(&r, buf + total, len - total, &ev, NULL), WS_EV_MESSAGE);
    CHECK_INT(ev.len, 1);
    CHECK_INT(ev.data[0], 'd');
    ws_reader_free(&r);
}

static void
test_close(void)
{
    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                     1010, 1011, 3000, 3999, 4000, 4999};
    static const unsigned invalid[] = {0,    999,  1004, 1005, 1006, 1015,
                                       1016, 1100, 2000, 2999, 5000, 65535};
    uint8_t buf[256], p[130];
    ws_reader r = reader(64);
    ws_event ev;
    size_t len, used, i;

    len = mk(buf, 1, 0, WS_OP_CLOSE, 1, "", 0);
    CHECK_INT(ws_reader_next(&r, buf, len, &used, &ev), WS_EV_CLOSE);
    CHECK_INT(ev.code, WS_CLOSE_NO_STATUS);

    for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        p[0] = (uint8_t)(valid[i] >> 8);
        p[1] = (uint8_t)valid[i];
        memcpy(p + 2, "bye", 3);
        len = mk(buf, 1, 0, WS_OP_CLOSE, 1, p, 5);
        CHECK_INT(ws_reader_next(&r, buf, len, &used, &ev), WS_EV_CLOSE);
        CHECK_INT(ev.code, valid[i]);
        CHECK_INT(ev.len, 3);
        CHECK_INT(ws_close_code_valid(valid[i]), 1);
    }
    for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        p[0] = (uint8_t)(invalid[i] >> 8);
        p[1] = (uint8_t)invalid[i];
        len = mk(buf, 1, 0, WS_OP_CLOSE, 1, p, 2);
        expect_error(buf, len, 64, WS_CLOSE_PROTOCOL, "invalid close code");
        CHECK_INT(ws_close_code_valid(invalid[i]), 0);
    }
    /* A 1-byte close payload. */
    len = mk(buf, 1, 0, WS_OP_CLOSE, 1, "\x03", 1);
    expect_error(buf, len, 64, WS_CLOSE_PROTOCOL, "1-byte close");
    /* A reason that is not UTF-8. */
    len = mk(buf, 1, 0, WS_OP_CLOSE, 1, "\x03\xe8\xff", 3);
    expect_error(buf, len, 64, WS_CLOSE_BAD_DATA, "close reason");
    ws_reader_free(&r);
}

static void
test_malformed(void)
{
    uint8_t buf[512], payload[200];
    size_t len;
    int op;

    memset(payload, 'x', sizeof payload);
    /* Reserved bits, one at a time. */
    len = mk(buf, 1, 4, WS_OP_TEXT, 1, "x", 1);
    expect_error(buf, len, 64, WS_CLOSE_PROTOCOL, "rsv1");
    len = mk(buf, 1, 2, WS_OP_TEXT, 1, "x", 1);
    expect_error(buf, len, 64, WS_CLOSE_PROTOCOL, "rsv2");
    len = mk(buf, 1, 1, WS_OP_PING, 1, "x", 1);
    expect_error(buf, len, 64, WS_CLOSE_PROTOCOL, "rsv3");
    /* Reserved opcodes. */
    for (op = 3; op <= 0xF; op++) {
        if (op >= 8 && op <= 0xA)
            continue;
        len = mk(buf, 1, 0, op, 1, "x", 1);
        expect_error(buf, len, 64, WS_CLOSE_PROTOCOL, "opcode");
    }
    /* Unmasked client frame. */
    len = mk(buf, 1, 0, WS_OP_TEXT, 0, "x", 1);
    expect_error(buf, len, 64, WS_CLOSE_PROTOCOL, "unmasked");
    /* Oversize: refused from the first bytes, before the payload. */
    len = mk(buf, 1, 0, WS_OP_TEXT, 1, payload, 65);
    expect_error(buf, 2, 64, WS_CLOSE_TOO_BIG, "oversize 7-bit");
    len = mk(buf, 1, 0, WS_OP_BINARY, 1, payload, 200);
    expect_error(buf, 4, 64, WS_CLOSE_TOO_BIG, "oversize 16-bit");
    /* 64-bit length with the top bit set. */
    buf[0] = 0x82;
    buf[1] = 0xFF;
    memset(buf + 2, 0xFF, 8);
    expect_error(buf, 14, 64, WS_CLOSE_PROTOCOL, "63-bit length");
    buf[2] = 0x7F; /* valid length, but huge */
    expect_error(buf, 14, 64, WS_CLOSE_TOO_BIG, "huge length");
    /* Control frames: over 125 bytes, fragmented. */
    len = mk(buf, 1, 0, WS_OP_PING, 1, payload, 126);
    expect_error(buf, len, 1024, WS_CLOSE_PROTOCOL, "control > 125");
    len = mk(buf, 0, 0, WS_OP_PONG, 1, "x", 1);
    expect_error(buf, len, 64, WS_CLOSE_PROTOCOL, "fragmented control");
    /* Bad UTF-8 in a single text frame. */
    len = mk(buf, 1, 0, WS_OP_TEXT, 1, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
             14);
    expect_error(buf, len, 64, WS_CLOSE_BAD_DATA, "surrogate in text");
}

/* The handshake's Origin check (cross-site WebSocket hijacking). */
static void
test_origins(void)
{
    /* programs send no Origin */
    CHECK(gw_origin_allowed(NULL, "127.0.0.1:5000", ""));
    /* the gateway's own page */
    CHECK(gw_origin_allowed("http://127.0.0.1:5000", "127.0.0.1:5000", ""));
    CHECK(gw_origin_allowed("HTTP://LOCALHOST:5000", "localhost:5000", NULL));
    /* another site */
    CHECK(!gw_origin_allowed("https://evil.example", "127.0.0.1:5000", ""));
    CHECK(!gw_origin_allowed("http://127.0.0.1:5001", "127.0.0.1:5000", ""));
    CHECK(!gw_origin_allowed("http://127.0.0.1:5000.evil", "127.0.0.1:5000", ""));
    CHECK(!gw_origin_allowed("null", "127.0.0.1:5000", ""));
    CHECK(!gw_origin_allowed("http://127.0.0.1:5000", NULL, ""));
    /* listed, or any */
    CHECK(gw_origin_allowed("https://app.example", "gw:5000", "https://a.example, https://app.example"));
    CHECK(!gw_origin_allowed("https://app.example.evil", "gw:5000", "https://app.example"));
    CHECK(!gw_origin_allowed("https://app", "gw:5000", "https://app.example"));
    CHECK(gw_origin_allowed("https://anything", "gw:5000", "*"));
    /* "*" among listed origins (GATEWAY_WS_ORIGINS=* with CORS origins) */
    CHECK(gw_origin_allowed("https://anything", "gw:5000", "*,https://app.example"));
    CHECK(gw_origin_allowed("https://anything", "gw:5000", "https://a.example, *"));
    /* whose cookies count: not "*"'s */
    CHECK(gw_origin_known(NULL, "gw:5000", "*"));
    CHECK(gw_origin_known("http://gw:5000", "gw:5000", "*"));
    CHECK(gw_origin_known("https://app.example", "gw:5000", "*,https://app.example"));
    CHECK(!gw_origin_known("https://anything", "gw:5000", "*"));
    CHECK(!gw_origin_known("*", "gw:5000", "*"));
}

int
main(void)
{
    test_origins();
    test_accept_key();
    test_header();
    test_utf8();
    test_single_messages();
    test_fragments();
    test_close();
    test_malformed();
    return check_done("test_ws_frame");
}
