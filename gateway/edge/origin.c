/*
 * origin.c: whose page sent a request, and what it may do (no I/O).
 *
 * Browsers say where a page came from in Origin (and, lately, in
 * Sec-Fetch-Site); programs send neither. A page of another site can make
 * a browser POST here with a form or a "simple" fetch (text/plain,
 * application/x-www-form-urlencoded, multipart/form-data) without asking
 * first, so a request that changes things is refused when a browser sends
 * it from an origin we do not know, or without Content-Type:
 * application/json, which a page may only send after a CORS preflight.
 */
#include "edge.h"

#include <string.h>
#include <strings.h>

/* The host[:port] part of "scheme://host[:port]": *len bytes from the
 * returned pointer, or NULL when origin has no "://". */
static const char *
origin_host(const char *origin, size_t *len)
{
    const char *p = strstr(origin, "://");

    if (p == NULL)
        return NULL;
    p += 3;
    *len = strcspn(p, "/");
    return p;
}

int
gw_origin_same(const char *origin, const char *host)
{
    const char *h;
    size_t hlen;

    if (origin == NULL || host == NULL)
        return 0;
    h = origin_host(origin, &hlen);
    return h != NULL && hlen > 0 && strlen(host) == hlen && strncasecmp(h, host, hlen) == 0;
}

int
gw_origin_listed(const char *origin, const char *list)
{
    const char *item = list;
    size_t olen;

    if (origin == NULL || list == NULL)
        return 0;
    olen = strlen(origin);
    if (olen == 0)
        return 0;
    while (*item) {
        size_t n;

        while (*item == ' ' || *item == ',')
            item++;
        n = strcspn(item, ", ");
        if (n > 0 && n == olen && strncasecmp(origin, item, n) == 0)
            return 1;
        item += n;
    }
    return 0;
}

int
gw_content_type_json(const char *ctype)
{
    static const char json[] = "application/json";
    size_t n = sizeof json - 1;

    if (ctype == NULL)
        return 0;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    if (strncasecmp(ctype, json, n) != 0)
        return 0;
    ctype += n;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    return *ctype == '\0' || *ctype == ';';
}

static int
method_is_safe(const char *method)
{
    return method != NULL && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
                              strcmp(method, "OPTIONS") == 0);
}

void
gw_csrf_check(const char *method, const char *origin, const char *fetch_site, const char *ctype,
              const char *host, const char *list, gw_csrf_verdict *out)
{
    int listed = gw_origin_listed(origin, list);
    int browser;

    out->status = 0;
    out->message = NULL;
    out->cors = listed;
    if (method_is_safe(method))
        return;
    /* Sec-Fetch-Site "none" is the user's own action (typed, bookmarked);
     * "same-origin" a page of ours. Anything else is another site's page. */
    browser = origin != NULL || (fetch_site != NULL && strcmp(fetch_site, "same-origin") != 0 &&
                                 strcmp(fetch_site, "none") != 0);
    if (!browser)
        return;
    if (origin == NULL) {
        out->status = 403;
        out->message = "a cross-site request from a browser must carry an Origin that the "
                       "gateway knows (its own or one in GATEWAY_CORS_ORIGINS)";
        return;
    }
    if (!listed && !gw_origin_same(origin, host)) {
        out->status = 403;
        out->message = "this page's origin may not call the gateway: it is neither the "
                       "gateway's own nor listed in GATEWAY_CORS_ORIGINS";
        return;
    }
    if (!gw_content_type_json(ctype)) {
        out->status = 403;
        out->message = "a request from a browser must send Content-Type: application/json";
        return;
    }
}

int
gw_cors_is_preflight(const char *method, const char *origin, const char *request_method)
{
    return method != NULL && strcmp(method, "OPTIONS") == 0 && origin != NULL &&
           request_method != NULL;
}

int
gw_cors_preflight(const char *origin, const char *request_method, const char *host,
                  const char *list, const char **message)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", NULL};
    size_t i;

    *message = NULL;
    if (!gw_origin_listed(origin, list) && !gw_origin_same(origin, host)) {
        *message = "this page's origin is not listed in GATEWAY_CORS_ORIGINS";
        return 403;
    }
    for (i = 0; methods[i]; i++)
        if (strcmp(request_method, methods[i]) == 0)
            return 204;
    *message = "the gateway serves GET, HEAD, POST, PUT, PATCH and DELETE";
    return 403;
}
