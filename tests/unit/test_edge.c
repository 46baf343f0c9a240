/* test_edge.c: the edge's pure parts: Origin matching, the CSRF rule,
 * CORS preflights, address keys, the token bucket and the body budget,
 * and the framework's escaping of outside text (logs, error bodies). */
#include "edge/edge.h"
#include "internal.h"

#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

static void
test_csrf(void)
{
    const char *list = "https://app.example.com, http://other.example:8080";
    gw_csrf_verdict v;

    /* curl: no Origin, any type */
    gw_csrf_check("POST", NULL, NULL, "application/x-www-form-urlencoded", "gw:5000", list, &v);
    CHECK_INT(v.status, 0);
    gw_csrf_check("POST", NULL, "none", NULL, "gw:5000", list, &v);
    CHECK_INT(v.status, 0);
    gw_csrf_check("POST", NULL, "same-origin", "text/plain", "gw:5000", list, &v);
    CHECK_INT(v.status, 0);
    /* browsers of other sites */
    gw_csrf_check("POST", "https://evil.example", NULL, "application/json", "gw:5000", list, &v);
    CHECK_INT(v.status, 403);
    CHECK_INT(v.cors, 0);
    gw_csrf_check("POST", NULL, "cross-site", "application/json", "gw:5000", list, &v);
    CHECK_INT(v.status, 403);
    gw_csrf_check("DELETE", "null", NULL, "application/json", "gw:5000", list, &v);
    CHECK_INT(v.status, 403);
    /* listed or own, but a form's type */
    gw_csrf_check("POST", "https://app.example.com", NULL, "text/plain", "gw:5000", list, &v);
    CHECK_INT(v.status, 403);
    CHECK_INT(v.cors, 1);
    gw_csrf_check("POST", "http://gw:5000", NULL, "multipart/form-data", "gw:5000", list, &v);
    CHECK_INT(v.status, 403);
    gw_csrf_check("POST", "https://APP.example.com", NULL, " application/JSON ; charset=utf-8",
                  "gw:5000", list, &v);
    CHECK_INT(v.status, 0);
    CHECK_INT(v.cors, 1);
    gw_csrf_check("POST", "http://gw:5000", "same-origin", "application/json", "gw:5000", list, &v);
    CHECK_INT(v.status, 0);
    CHECK_INT(v.cors, 0);
    /* reads are never refused */
    gw_csrf_check("GET", "https://evil.example", "cross-site", NULL, "gw:5000", list, &v);
    CHECK_INT(v.status, 0);

    CHECK(!gw_content_type_json("application/jsonx"));
    CHECK(!gw_content_type_json("application/json-seq"));
    CHECK(!gw_content_type_json("text/json"));
    CHECK(gw_content_type_json("application/json"));
    CHECK(!gw_origin_listed("https://app.example.com.evil", list));
    CHECK(!gw_origin_listed("https://app.example", list));
    CHECK(!gw_origin_listed("", list));
    CHECK(!gw_origin_listed("https://app.example.com", NULL));
    CHECK(!gw_origin_same("http://gw:5000.evil", "gw:5000"));
    CHECK(!gw_origin_same("gw:5000", "gw:5000"));
}

static void
test_preflight(void)
{
    const char *list = "https://app.example.com";
    const char *msg;

    CHECK(gw_cors_is_preflight("OPTIONS", "https://x", "POST"));
    CHECK(!gw_cors_is_preflight("OPTIONS", NULL, "POST"));
    CHECK(!gw_cors_is_preflight("POST", "https://x", "POST"));
    CHECK_INT(gw_cors_preflight("https://app.example.com", "POST", "gw", list, &msg), 204);
    CHECK(msg == NULL);
    CHECK_INT(gw_cors_preflight("https://evil.example", "POST", "gw", list, &msg), 403);
    CHECK(msg != NULL);
    CHECK_INT(gw_cors_preflight("https://app.example.com", "CONNECT", "gw", list, &msg), 403);
}

static void
test_addr_and_bucket(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct sockaddr_in6 b = {.sin6_family = AF_INET6}, c = {.sin6_family = AF_INET6};
    gw_config cfg = {.conn_per_addr = 2, .rate = 10, .rate_burst = 3, .body_memory = 1000};
    uint8_t ka[16], kb[16], kc[16];
    char text[64];
    gw_addr *x, *y, *z;
    int over, i;

    inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
    inet_pton(AF_INET6, "2001:db8:1:2::1", &b.sin6_addr);
    inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &c.sin6_addr);
    CHECK_INT(gw_addr_key((struct sockaddr *)&a, ka), 0);
    CHECK_INT(gw_addr_key((struct sockaddr *)&b, kb), 0);
    CHECK_INT(gw_addr_key((struct sockaddr *)&c, kc), 0);
    CHECK(memcmp(kb, kc, 16) == 0); /* one /64 */
    gw_addr_text(ka, text, sizeof text);
    CHECK_STR(text, "192.0.2.7");
    gw_addr_text(kb, text, sizeof text);
    CHECK_STR(text, "2001:db8:1:2::/64");

    /* connections per address */
    CHECK(gw_limits_may_accept(&cfg, ka));
    x = gw_limits_open(&cfg, ka, &over);
    CHECK(x != NULL && !over);
    y = gw_limits_open(&cfg, ka, &over);
    CHECK(!over);
    CHECK(!gw_limits_may_accept(&cfg, ka));
    CHECK(gw_limits_may_accept(&cfg, kb));
    z = gw_limits_open(&cfg, ka, &over);
    CHECK(over);
    gw_limits_close(z);
    gw_limits_close(y);
    CHECK(gw_limits_may_accept(&cfg, ka));

    /* the bucket: burst 3, then one token per 100 ms */
    for (i = 0; i < 3; i++)
        CHECK_INT(gw_limits_take(&cfg, x, 1000000), 0);
    CHECK_INT(gw_limits_take(&cfg, x, 1000000), 1);
    CHECK_INT(gw_limits_take(&cfg, x, 1000099), 1);
    CHECK_INT(gw_limits_take(&cfg, x, 1000100), 0);
    CHECK_INT(gw_limits_take(&cfg, x, 1000100), 1);
    /* an open connection keeps its address; a refilled idle one goes */
    gw_limits_sweep(&cfg, 1000100 + 1000);
    CHECK_INT(gw_limits_addresses(), 1);
    gw_limits_close(x);
    gw_limits_sweep(&cfg, 1000100 + 100);
    CHECK_INT(gw_limits_addresses(), 1); /* bucket not full yet: remembered */
    gw_limits_sweep(&cfg, 1000100 + 1000);
    CHECK_INT(gw_limits_addresses(), 0);

    /* body memory */
    CHECK_INT(gw_body_reserve(&cfg, 600), 0);
    CHECK_INT(gw_body_reserve(&cfg, 401), -1);
    CHECK_INT(gw_body_reserve(&cfg, 400), 0);
    CHECK_INT(gw_body_held(), 1000);
    CHECK_INT(gw_body_reserve(&cfg, (size_t)-1), -1);
    gw_body_release(1000);
    CHECK_INT(gw_body_held(), 0);
}

static void
test_escape(void)
{
    char out[64];
    json_t *v;

    nrpc__escape_text(out, sizeof out,
                      "a\nb\rc\td\x01"
                      "e\x7f",
                      10, 0);
    CHECK_STR(out, "a\\nb\\rc\\td\\x01e\\x7f");
    nrpc__escape_text(out, sizeof out, "caf\xc3\xa9 \xff", 7, 0);
    CHECK_STR(out, "caf\xc3\xa9 \xff"); /* text logs keep bytes, only controls go */
    nrpc__escape_text(out, sizeof out, "caf\xc3\xa9 \xff\xc3", 8, 1);
    CHECK_STR(out, "caf\xc3\xa9 \\xff\\xc3");
    nrpc__escape_text(out, sizeof out, "\xed\xa0\x80", 3, 1); /* a surrogate */
    CHECK_STR(out, "\\xed\\xa0\\x80");
    nrpc__escape_text(out, 6, "ab\ncd", 5, 0); /* cut at a whole escape */
    CHECK_STR(out, "ab\\nc");
    nrpc__escape_text(out, 4, "a\xc3\xa9", 3, 1); /* never half a character */
    CHECK_STR(out, "a\xc3\xa9");
    nrpc__escape_text(out, 3, "a\xc3\xa9", 3, 1);
    CHECK_STR(out, "a");
    v = nrpc_error_body(400, NULL, "not an rpc subject: '\xff'");
    CHECK(v != NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(v, "error"), "message")),
              "not an rpc subject: '\\xff'");
    json_decref(v);
}

int
main(void)
{
    test_csrf();
    test_preflight();
    test_addr_and_bucket();
    test_escape();
    return check_done("edge");
}
