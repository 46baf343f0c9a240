/* fuzz_origin.c: Origin matching, the CSRF rule and CORS preflights on
 * random headers. The input is split at NUL bytes into method, Origin,
 * Sec-Fetch-Site, Content-Type, Host and the GATEWAY_CORS_ORIGINS list.
 * Invariants: a listed origin is never refused for its origin, a request
 * with neither Origin nor Sec-Fetch-Site is never refused, GET is never
 * refused, and whatever is let through from a browser is JSON. */
#include "edge.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *f[6] = {NULL};
    const char *msg;
    gw_csrf_verdict v;
    size_t i, n = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    f[n++] = buf;
    for (i = 0; i < size && n < 6; i++) {
        if (buf[i] == '\0')
            f[n++] = buf + i + 1;
    }
    /* An empty field stands for an absent header. */
    for (i = 1; i < 5; i++)
        if (f[i] != NULL && f[i][0] == '\0')
            f[i] = NULL;

    gw_csrf_check(f[0], f[1], f[2], f[3], f[4], f[5], &v);
    if (v.status != 0 && v.status != 403)
        abort();
    if ((v.status == 0) != (v.message == NULL))
        abort();
    if (f[1] == NULL && f[2] == NULL && v.status != 0)
        abort();
    if (f[0] && strcmp(f[0], "GET") == 0 && v.status != 0)
        abort();
    if (v.status == 0 && f[1] != NULL && f[0] && strcmp(f[0], "GET") != 0 &&
        strcmp(f[0], "HEAD") != 0 && strcmp(f[0], "OPTIONS") != 0 && !gw_content_type_json(f[3]))
        abort();
    if (v.cors != gw_origin_listed(f[1], f[5]))
        abort();
    if (v.cors && v.status != 0 && gw_content_type_json(f[3]))
        abort();
    if (f[1] &&
        gw_origin_listed(f[1], f[1]) != (f[1][0] != '\0' && strcspn(f[1], ", ") == strlen(f[1])))
        abort();
    if (gw_cors_is_preflight(f[0], f[1], f[2])) {
        int st = gw_cors_preflight(f[1], f[2], f[4], f[5], &msg);
        if ((st == 204) != (msg == NULL) || (st != 204 && st != 403))
            abort();
    }
    (void)gw_origin_same(f[1], f[4]);
    free(buf);
    return 0;
}
