/* test_early_reply.c: the head of an answer the gateway writes itself while
 * a body is still coming (gateway/bridge/early_reply.c): the response's own
 * headers, its own framing (a Connection or Content-Length set on the
 * response does not pass twice), and a head too long for its buffer. */
#include "bridge/bridge.h"
#include "check.h"

#include <microhttpd.h>

#include <string.h>

static void
test_head(void)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    char out[512];
    long n;

    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Retry-After", "1");
    /* 2026-11-30T05:50:00Z */
    n = gw_early_head(413, resp, 100, (time_t)1796017800, out, sizeof out);
    CHECK_STR(out, "HTTP/1.1 413 Content Too Large\r\n"
                   "Date: Mon, 30 Nov 2026 05:50:00 GMT\r\n"
                   "Content-Type: application/json\r\n"
                   "Vary: Origin\r\n"
                   "Retry-After: 1\r\n"
                   "Content-Length: 100\r\n"
                   "Connection: close\r\n"
                   "\r\n");
    CHECK_INT(n, (long)strlen(out));

    /* The framing is the head's own: once each. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "keep-alive");
    n = gw_early_head(503, resp, 0, (time_t)1796017800, out, sizeof out);
    CHECK_STR(out, "HTTP/1.1 503 Service Unavailable\r\n"
                   "Date: Mon, 30 Nov 2026 05:50:00 GMT\r\n"
                   "Content-Type: application/json\r\n"
                   "Vary: Origin\r\n"
                   "Retry-After: 1\r\n"
                   "Content-Length: 0\r\n"
                   "Connection: close\r\n"
                   "\r\n");
    CHECK_INT(n, (long)strlen(out));

    /* Too long for the buffer, at every size: -1, never a cut head. */
    {
        size_t cap, full = strlen(out);
        for (cap = 0; cap <= full; cap++)
            CHECK_INT(gw_early_head(503, resp, 0, (time_t)1796017800, out, cap), -1);
        CHECK_INT(gw_early_head(503, resp, 0, (time_t)1796017800, out, full + 1), (long)full);
    }
    MHD_destroy_response(resp);
}

int
main(void)
{
    test_head();
    return check_done("test_early_reply");
}
