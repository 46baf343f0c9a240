/* rest.c: the gateway's REST routes (see rest.h). Pure: INFO documents in,
 * a table out; requests and replies in, NATS bodies and HTTP answers out. */
#include "rest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nrpc_route route;
    char shape[NRPC_MAX_ROUTE + 1]; /* path with every {name} as {} */
    int literals;                   /* literal segments: the more, the earlier */
    char subject[NRPC_MAX_SUBJECT + 1];
    json_t *params; /* the rpc's declared params (array of {name, type, ...}) */
    int varkw;
} rest_route;

struct gw_rest {
    rest_route *routes;
    size_t n;
};

static void
shape_of(const char *path, char *out, size_t outlen, int *literals)
{
    size_t w = 0;
    int lit = 0;

    while (*path && w + 3 < outlen) {
        if (*path == '{') {
            out[w++] = '{';
            out[w++] = '}';
            path = strchr(path, '}') + 1;
        } else {
            if (*path == '/' && path[1] && path[1] != '{')
                lit++;
            out[w++] = *path++;
        }
    }
    out[w] = '\0';
    *literals = lit;
}

/* Sorts INFO endpoints so the first declaration of a route is the same
 * whatever order replies came in: the service that was there first (the
 * earliest "started" of its instances, INFO metadata; without one, after
 * those that have it), then by service name, then by method name. So a
 * service started later cannot take over a route, and every gateway agrees
 * on who serves it. */
typedef struct {
    const char *service, *method, *subject;
    const char *started; /* the service's earliest instance; "~" unknown */
    json_t *md;
} endpoint;

static int
endpoint_cmp(const void *a, const void *b)
{
    const endpoint *x = a, *y = b;
    int c = strcmp(x->started, y->started);
    if (c == 0)
        c = strcmp(x->service, y->service);
    return c ? c : strcmp(x->method, y->method);
}

/* The earliest "started" among the instances of service in infos: borrowed;
 * "~" (after every timestamp) when none says. */
static const char *
service_started(json_t *infos, const char *service)
{
    const char *best = "~";
    size_t i;
    json_t *info;

    json_array_foreach(infos, i, info) {
        const char *name = json_string_value(json_object_get(info, "name"));
        const char *s =
            json_string_value(json_object_get(json_object_get(info, "metadata"), "started"));
        if (name && s && *s && strcmp(name, service) == 0 && strcmp(s, best) < 0)
            best = s;
    }
    return best;
}

static int
route_cmp(const void *a, const void *b)
{
    const rest_route *x = a, *y = b;
    int c;

    if (y->literals != x->literals)
        return y->literals - x->literals; /* more literal segments first */
    c = strcmp(x->shape, y->shape);
    return c ? c : strcmp(x->route.method, y->route.method); /* then a stable order */
}

static void
report(json_t *conflicts, const char *fmt, const char *a, const char *b, const char *c)
{
    char msg[1024];
    if (conflicts == NULL)
        return;
    snprintf(msg, sizeof msg, fmt, a, b, c);
    json_array_append_new(conflicts, json_string(msg));
}

gw_rest *
gw_rest_build(json_t *infos, json_t *conflicts)
{
    gw_rest *t = calloc(1, sizeof *t);
    endpoint *eps = NULL;
    size_t neps = 0, cap = 0, i, j;
    json_t *info;

    if (t == NULL)
        return NULL;
    json_array_foreach(infos, i, info) {
        const char *service = json_string_value(json_object_get(info, "name"));
        json_t *list = json_object_get(info, "endpoints"), *ep;
        size_t k;
        if (service == NULL || !json_is_array(list))
            continue;
        json_array_foreach(list, k, ep) {
            const char *name = json_string_value(json_object_get(ep, "name"));
            const char *subject = json_string_value(json_object_get(ep, "subject"));
            json_t *md = json_object_get(ep, "metadata");
            size_t d;
            if (name == NULL || subject == NULL || !json_is_object(md) ||
                !json_is_string(json_object_get(md, "http")) ||
                !nrpc_subject_is_rpc(subject, strlen(subject)))
                continue;
            for (d = 0; d < neps; d++) /* a replica's copy */
                if (strcmp(eps[d].subject, subject) == 0)
                    break;
            if (d < neps)
                continue;
            if (neps == cap) {
                endpoint *bigger = realloc(eps, (cap = cap ? cap * 2 : 16) * sizeof *eps);
                if (bigger == NULL)
                    goto oom;
                eps = bigger;
            }
            eps[neps++] = (endpoint){service, name, subject, NULL, md};
        }
    }
    for (i = 0; i < neps; i++)
        eps[i].started = service_started(infos, eps[i].service);
    if (neps)
        qsort(eps, neps, sizeof *eps, endpoint_cmp);
    for (i = 0; i < neps; i++) {
        json_t *rules = json_loads(json_string_value(json_object_get(eps[i].md, "http")), 0, NULL);
        const char *ptext = json_string_value(json_object_get(eps[i].md, "params"));
        json_t *params = ptext ? json_loads(ptext, 0, NULL) : json_array(), *rule;
        size_t k;

        if (!json_is_array(params)) {
            json_decref(params);
            params = json_array();
        }
        json_array_foreach(rules, k, rule) {
            rest_route r = {0};
            char err[256];
            const char *text = json_string_value(rule);
            if (text == NULL || nrpc_route_parse(text, &r.route, err, sizeof err) != 0) {
                report(conflicts, "%s: %s (%s)", eps[i].subject, text ? err : "not a string", "");
                continue;
            }
            shape_of(r.route.path, r.shape, sizeof r.shape, &r.literals);
            for (j = 0; j < t->n; j++)
                if (strcmp(t->routes[j].route.method, r.route.method) == 0 &&
                    strcmp(t->routes[j].shape, r.shape) == 0)
                    break;
            if (j < t->n) {
                report(conflicts, "%s declares %s, which %s serves already", eps[i].subject, text,
                       t->routes[j].subject);
                continue;
            }
            {
                rest_route *bigger = realloc(t->routes, (t->n + 1) * sizeof *bigger);
                if (bigger == NULL) {
                    json_decref(rules);
                    json_decref(params);
                    goto oom;
                }
                t->routes = bigger;
            }
            snprintf(r.subject, sizeof r.subject, "%s", eps[i].subject);
            r.params = json_incref(params);
            r.varkw = json_is_true(json_object_get(eps[i].md, "varkw")) ||
                      (json_is_string(json_object_get(eps[i].md, "varkw")) &&
                       strcmp(json_string_value(json_object_get(eps[i].md, "varkw")), "true") ==
                           0);
            t->routes[t->n++] = r;
        }
        json_decref(rules);
        json_decref(params);
    }
    if (t->n)
        qsort(t->routes, t->n, sizeof *t->routes, route_cmp);
    free(eps);
    return t;
oom:
    free(eps);
    gw_rest_free(t);
    return NULL;
}

void
gw_rest_free(gw_rest *t)
{
    size_t i;
    if (t == NULL)
        return;
    for (i = 0; i < t->n; i++)
        json_decref(t->routes[i].params);
    free(t->routes);
    free(t);
}

size_t
gw_rest_count(const gw_rest *t)
{
    return t ? t->n : 0;
}

/* ---- binding text to declared types ------------------------------------ */

static json_t *
param_of(json_t *params, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p) {
        const char *n = json_string_value(json_object_get(p, "name"));
        if (n && strcmp(n, name) == 0)
            return p;
    }
    return NULL;
}

/* Text from a path or query string as the declared type: new, or NULL with
 * a message. */
static json_t *
typed_value(json_t *param, const char *name, const char *text, char *err, size_t errlen)
{
    const char *type = json_string_value(json_object_get(param, "type"));
    json_t *v = NULL;

    if (type == NULL || strcmp(type, "string") == 0)
        return json_string(text);
    if (strcmp(type, "integer") == 0) {
        int64_t x;
        if (nrpc_parse_int64(text, &x) == 0)
            v = json_integer((json_int_t)x);
    } else if (strcmp(type, "number") == 0) {
        char *end = NULL;
        double d;
        errno = 0;
        d = strtod(text, &end);
        if (*text && end && *end == '\0' && errno == 0 && isfinite(d))
            v = json_real(d);
    } else if (strcmp(type, "boolean") == 0) {
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
            v = json_true();
        else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
            v = json_false();
    } else {
        /* array, object, any: JSON text (a bare word is a string for any) */
        v = json_loads(text, JSON_DECODE_ANY, NULL);
        if (v == NULL && strcmp(type, "any") == 0)
            v = json_string(text);
        if (v && ((strcmp(type, "array") == 0 && !json_is_array(v)) ||
                  (strcmp(type, "object") == 0 && !json_is_object(v)))) {
            json_decref(v);
            v = NULL;
        }
    }
    if (v == NULL && strcmp(text, "null") == 0 && json_is_null(json_object_get(param, "default")))
        v = json_null();
    if (v == NULL)
        snprintf(err, errlen, "parameter '%s' must be %s %s, not '%.64s'", name,
                 type[0] == 'a' || type[0] == 'i' || type[0] == 'o' ? "an" : "a", type, text);
    return v;
}

/* Binds name=text (already decoded) into kwargs. 0, or -1 with err. */
static int
bind_text(gw_rest_call *c, const char *name, const char *text, const char *where, char *err,
          size_t errlen)
{
    json_t *p, *v;

    /* Decoded text may be any bytes: a JSON string (and the error message
     * naming it) must be UTF-8. */
    v = json_string(name);
    if (v == NULL) {
        snprintf(err, errlen, "a %s parameter's name is not UTF-8 text", where);
        return -1;
    }
    json_decref(v);
    v = json_string(text);
    if (v == NULL) {
        snprintf(err, errlen, "parameter '%.64s' is not UTF-8 text", name);
        return -1;
    }
    json_decref(v);
    p = param_of(c->params, name);
    if (json_object_get(c->kwargs, name)) {
        snprintf(err, errlen, "parameter '%.64s' is given twice", name);
        return -1;
    }
    if (p == NULL && !c->varkw) {
        snprintf(err, errlen, "unknown %s parameter '%.64s'", where, name);
        return -1;
    }
    v = p ? typed_value(p, name, text, err, errlen) : json_string(text);
    if (v == NULL)
        return -1;
    json_object_set_new(c->kwargs, name, v);
    return 0;
}

static int
bind_query(gw_rest_call *c, const char *q, char *err, size_t errlen)
{
    while (q && *q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        char *name, *value;
        int rc;

        if (n == 0) {
            q++;
            continue;
        }
        name = nrpc_percent_decode(q, eq ? (size_t)(eq - q) : n, NRPC_PCT_PLUS);
        value = eq ? nrpc_percent_decode(eq + 1, n - (size_t)(eq - q) - 1, NRPC_PCT_PLUS) : strdup("");
        if (name == NULL || value == NULL || name[0] == '\0') {
            free(name);
            free(value);
            snprintf(err, errlen, "the query string is not name=value pairs");
            return -1;
        }
        rc = bind_text(c, name, value, "query", err, errlen);
        free(name);
        free(value);
        if (rc != 0)
            return -1;
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

gw_rest_result
gw_rest_match(const gw_rest *t, const char *method, const char *path, size_t len,
              const char *query, gw_rest_call *out, char *allow, size_t allowlen, char *err,
              size_t errlen)
{
    size_t i, w = 0;
    int other = 0;

    memset(out, 0, sizeof *out);
    if (allowlen)
        allow[0] = '\0';
    for (i = 0; t && i < t->n; i++) {
        const rest_route *r = &t->routes[i];
        json_t *found = json_object();
        const char *key;
        json_t *v;

        if (!nrpc_route_match(&r->route, r->route.method, path, len, found)) {
            json_decref(found);
            continue;
        }
        if (strcmp(r->route.method, method) != 0) {
            /* the path is served, by another method */
            size_t m = strlen(r->route.method);
            if (!strstr(allow, r->route.method) && w + m + 3 < allowlen) {
                w += (size_t)snprintf(allow + w, allowlen - w, "%s%s", w ? ", " : "",
                                      r->route.method);
            }
            other = 1;
            json_decref(found);
            continue;
        }
        out->route = r->route;
        snprintf(out->subject, sizeof out->subject, "%s", r->subject);
        out->params = r->params;
        out->varkw = r->varkw;
        out->kwargs = json_object();
        json_object_foreach(found, key, v) {
            if (bind_text(out, key, json_string_value(v), "path", err, errlen) != 0) {
                json_decref(found);
                gw_rest_call_done(out);
                return GW_REST_BAD;
            }
        }
        json_decref(found);
        if (bind_query(out, query, err, errlen) != 0) {
            gw_rest_call_done(out);
            return GW_REST_BAD;
        }
        return GW_REST_MATCH;
    }
    return other ? GW_REST_METHOD : GW_REST_NONE;
}

void
gw_rest_call_done(gw_rest_call *c)
{
    json_decref(c->kwargs);
    c->kwargs = NULL;
}

int
gw_rest_request(gw_rest_call *c, const char *body, size_t len, char **out, char *err,
                size_t errlen)
{
    size_t i;
    json_t *obj = NULL, *v;
    const char *key;

    *out = NULL;
    for (i = 0; i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' ||
                            body[i] == '\n');
         i++)
        ;
    if (i < len) {
        json_error_t je;
        obj = json_loadb(body, len, 0, &je);
        if (!json_is_object(obj)) {
            json_decref(obj);
            snprintf(err, errlen, "the body must be a JSON object of parameters%s%s",
                     obj ? "" : ": ", obj ? "" : je.text);
            return -1;
        }
        json_object_foreach(obj, key, v) {
            if (json_object_get(c->kwargs, key)) {
                snprintf(err, errlen, "parameter '%.64s' is given twice (path or query, and "
                                      "body)",
                         key);
                json_decref(obj);
                return -1;
            }
            json_object_set(c->kwargs, key, v);
        }
        json_decref(obj);
    }
    *out = nrpc_reply_encode(json_array(), json_incref(c->kwargs));
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int
gw_rest_answer(const gw_rest_call *c, const char *reply, size_t len, int *status, char **body,
               char *location, size_t loclen)
{
    json_t *r = json_loadb(reply, len, 0, NULL), *args, *kwargs, *shown;

    *body = NULL;
    if (loclen)
        location[0] = '\0';
    args = json_array_get(r, 0);
    kwargs = json_array_get(r, 1);
    if (!json_is_array(r) || json_array_size(r) != 2 || !json_is_array(args) ||
        !json_is_object(kwargs)) {
        json_decref(r);
        return -1;
    }
    *status = c->route.status;
    /* One shape per rpc whatever the count: a list rpc answering one
     * thing per positional value (get_things) is {"items": [...], "next"}
     * for zero, one or many things. */
    if (json_array_size(args) == 1 && json_object_size(kwargs) == 0) {
        shown = json_incref(json_array_get(args, 0));
    } else {
        shown = json_deep_copy(kwargs);
        json_object_set(shown, "items", args);
    }
    if (c->route.location[0] && loclen)
        if (nrpc_route_location(&c->route, json_array_get(args, 0), location, loclen) != 0)
            location[0] = '\0';
    if (*status != 204)
        *body = json_dumps(shown, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(shown);
    json_decref(r);
    return *status != 204 && *body == NULL ? -1 : 0;
}

json_t *
gw_rest_routes(const gw_rest *t)
{
    json_t *list = json_array();
    size_t i;

    for (i = 0; t && i < t->n; i++) {
        const rest_route *r = &t->routes[i];
        json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:s, s:s, s:O}", "method",
                                              r->route.method, "path", r->route.path, "status",
                                              r->route.status, "location", r->route.location,
                                              "subject", r->subject, "params", r->params));
    }
    return list;
}
