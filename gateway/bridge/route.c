/*
 * route.c: which paths the gateway serves and how long a request may wait.
 * Pure functions, no I/O: tests/unit/test_gw_route.c includes this file and
 * tests/fuzz/fuzz_route.c feeds it random input.
 */
#include "bridge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

gw_route_kind
gw_route_match(const char *path, const char **subject, size_t *len)
{
    const char *s;
    size_t n;

    *subject = NULL;
    *len = 0;
    if (path == NULL || path[0] != '/')
        return GW_ROUTE_NOT_FOUND;
    s = path + 1;
    n = strlen(s);
    if (n == 7 && memcmp(s, "healthz", 7) == 0)
        return GW_ROUTE_HEALTHZ;
    /* "/" alone and "/a/b" are not rpc-shaped at all: plain 404. */
    if (n == 0 || memchr(s, '/', n) != NULL)
        return GW_ROUTE_NOT_FOUND;
    *subject = s;
    *len = n;
    /* One segment: the caller meant an rpc, so a bad subject is the
     * caller's error (400), never something we publish. */
    return nrpc_subject_is_rpc(s, n) ? GW_ROUTE_RPC : GW_ROUTE_BAD_RPC;
}

int
gw_parse_timeout(const char *text, int64_t max_ms, int64_t *ms)
{
    const char *p;
    char *end = NULL;
    double sec, v;

    if (text == NULL || !((text[0] >= '0' && text[0] <= '9') || text[0] == '.'))
        return -1;
    /* Plain decimal notation only: strtod would also take hex, "inf" and
     * "nan", which no one means as a timeout. */
    for (p = text; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' ||
              *p == '-'))
            return -1;
    }
    sec = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(sec) || sec <= 0)
        return -1;
    v = ceil(sec * 1000.0);
    if (v > (double)max_ms)
        *ms = max_ms;
    else
        *ms = v < 1 ? 1 : (int64_t)v;
    return 0;
}
