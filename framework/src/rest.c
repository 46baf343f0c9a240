/* rest.c: REST route rules ("PUT /things/{uuid}"): parsing, matching a
 * request path, and filling a Location. Pure functions: services check
 * their rules at start with them, the gateway routes with them. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
route_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

/* Checks a path template: "/" alone, or "/seg/seg..." with literal tokens
 * or {name}. */
static int
path_valid(const char *p, char *err, size_t errlen, const char *what)
{
    if (p[0] != '/') {
        snprintf(err, errlen, "%s must start with '/'", what);
        return -1;
    }
    if (p[1] == '\0')
        return 0;
    while (*p == '/') {
        const char *seg = ++p;
        size_t n = strcspn(seg, "/");
        size_t i;

        if (n == 0) {
            snprintf(err, errlen, "%s has an empty segment", what);
            return -1;
        }
        if (seg[0] == '{') {
            if (n < 3 || seg[n - 1] != '}') {
                snprintf(err, errlen, "%s: a parameter segment is {name}", what);
                return -1;
            }
            for (i = 1; i < n - 1; i++)
                if (!route_token_char((unsigned char)seg[i]) || seg[i] == '.') {
                    snprintf(err, errlen, "%s: bad parameter name in '%.*s'", what, (int)n, seg);
                    return -1;
                }
        } else {
            for (i = 0; i < n; i++)
                if (!route_token_char((unsigned char)seg[i])) {
                    snprintf(err, errlen, "%s: '%.*s' is not a literal segment", what, (int)n,
                             seg);
                    return -1;
                }
        }
        p = seg + n;
    }
    if (*p != '\0') {
        snprintf(err, errlen, "%s ends with '/'", what);
        return -1;
    }
    return 0;
}

int
nrpc_route_parse(const char *rule, nrpc_route *out, char *err, size_t errlen)
{
    char buf[3 * (NRPC_MAX_ROUTE + 16)], *save = NULL, *method, *path, *status, *loc, *extra;

    memset(out, 0, sizeof *out);
    if (rule == NULL || strlen(rule) >= sizeof buf) {
        snprintf(err, errlen, "a route rule is \"METHOD /path [STATUS [LOCATION]]\"");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", rule);
    method = strtok_r(buf, " ", &save);
    path = strtok_r(NULL, " ", &save);
    status = strtok_r(NULL, " ", &save);
    loc = strtok_r(NULL, " ", &save);
    extra = strtok_r(NULL, " ", &save);
    if (method == NULL || path == NULL || extra != NULL) {
        snprintf(err, errlen, "route '%.64s': a rule is \"METHOD /path [STATUS [LOCATION]]\"",
                 rule);
        return -1;
    }
    if (strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "PUT") &&
        strcmp(method, "PATCH") && strcmp(method, "DELETE")) {
        snprintf(err, errlen, "route '%.64s': method must be GET, POST, PUT, PATCH or DELETE",
                 rule);
        return -1;
    }
    if (strlen(path) > NRPC_MAX_ROUTE || (loc && strlen(loc) > NRPC_MAX_ROUTE)) {
        snprintf(err, errlen, "route '%.64s': paths are at most %d bytes", rule, NRPC_MAX_ROUTE);
        return -1;
    }
    if (path_valid(path, err, errlen, "the path") != 0 ||
        (loc && path_valid(loc, err, errlen, "the location") != 0))
        return -1;
    out->status = 200;
    if (status) {
        char *end = NULL;
        long st = strtol(status, &end, 10);
        if (*end != '\0' || st < 200 || st > 299) {
            snprintf(err, errlen, "route '%.64s': status must be 200 to 299", rule);
            return -1;
        }
        out->status = (int)st;
    }
    if (out->status == 204 && loc) {
        snprintf(err, errlen, "route '%.64s': a 204 has no location", rule);
        return -1;
    }
    snprintf(out->method, sizeof out->method, "%s", method);
    snprintf(out->path, sizeof out->path, "%s", path);
    if (loc)
        snprintf(out->location, sizeof out->location, "%s", loc);
    return 0;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

char *
nrpc_percent_decode(const char *s, size_t n, unsigned flags)
{
    char *out = malloc(n + 1), *w = out;
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+' && (flags & NRPC_PCT_PLUS)) {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) { /* a '%' needs two hex digits after it */
                free(out);
                return NULL;
            }
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || (c == '/' && (flags & NRPC_PCT_NO_SLASH))) {
            free(out);
            return NULL;
        }
        *w++ = c;
    }
    *w = '\0';
    return out;
}

int
nrpc_route_match(const nrpc_route *route, const char *method, const char *path, size_t len,
                 json_t *params)
{
    const char *t = route->path, *p = path, *end = path + len;
    json_t *found;

    if (method == NULL || path == NULL || strcmp(method, route->method) != 0)
        return 0;
    if (strcmp(t, "/") == 0)
        return len == 1 && path[0] == '/';
    found = json_object();
    while (*t == '/') {
        const char *tseg = t + 1, *pseg;
        size_t tn = strcspn(tseg, "/"), pn;

        if (p >= end || *p != '/')
            goto no;
        pseg = p + 1;
        for (pn = 0; pseg + pn < end && pseg[pn] != '/'; pn++)
            ;
        if (pn == 0)
            goto no;
        if (tseg[0] == '{') {
            char name[NRPC_MAX_ROUTE + 1], *v = nrpc_percent_decode(pseg, pn, NRPC_PCT_NO_SLASH);
            json_t *s = v ? json_string(v) : NULL; /* NULL: not UTF-8 */
            /* "." and ".." are dot-segments (RFC 3986 5.2.4), never names:
             * a handler that puts a parameter into a path or a URL would
             * climb out of it. */
            int dots = v && (strcmp(v, ".") == 0 || strcmp(v, "..") == 0);
            free(v);
            if (s == NULL || dots) {
                json_decref(s);
                goto no;
            }
            snprintf(name, sizeof name, "%.*s", (int)(tn - 2), tseg + 1);
            json_object_set_new(found, name, s);
        } else if (memchr(pseg, '%', pn) != NULL) {
            /* "/th%69ngs" is "/things" (a literal is made of unreserved
             * characters, which percent-encoding does not change). */
            char *v = nrpc_percent_decode(pseg, pn, NRPC_PCT_NO_SLASH);
            int same = v && strlen(v) == tn && memcmp(tseg, v, tn) == 0;
            free(v);
            if (!same)
                goto no;
        } else if (tn != pn || memcmp(tseg, pseg, pn) != 0) {
            goto no;
        }
        t = tseg + tn;
        p = pseg + pn;
    }
    if (p != end)
        goto no;
    json_object_update(params, found);
    json_decref(found);
    return 1;
no:
    json_decref(found);
    return 0;
}

int
nrpc_route_location(const nrpc_route *route, json_t *value, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *t = route->location;
    size_t w = 0;

    if (t[0] == '\0' || !json_is_object(value) || outlen == 0)
        return -1;
    while (*t) {
        if (*t == '{') {
            const char *close = strchr(t, '}');
            char name[NRPC_MAX_ROUTE + 1], num[32];
            const char *v;
            json_t *f;
            snprintf(name, sizeof name, "%.*s", (int)(close - t - 1), t + 1);
            f = json_object_get(value, name);
            if (json_is_string(f)) {
                v = json_string_value(f);
            } else if (json_is_integer(f)) {
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(f));
                v = num;
            } else {
                return -1;
            }
            for (; *v; v++) {
                unsigned char c = (unsigned char)*v;
                if (route_token_char(c) || c == '~') {
                    if (w + 1 >= outlen)
                        return -1;
                    out[w++] = (char)c;
                } else {
                    if (w + 3 >= outlen)
                        return -1;
                    out[w++] = '%';
                    out[w++] = hex[c >> 4];
                    out[w++] = hex[c & 15];
                }
            }
            t = close + 1;
        } else {
            if (w + 1 >= outlen)
                return -1;
            out[w++] = *t++;
        }
    }
    out[w] = '\0';
    return 0;
}
