/* fuzz_gw_rest_build.c: $SRV.INFO replies, as any program on NATS may send
 * them, into the gateway's REST table and the catalog's documents
 * (bridge/rest.c, pages/catalog_doc.c, openapi.c, openapi_rest.c). Input:
 * a JSON array of INFO replies. Nothing may crash or leak; every conflict
 * is a string; the documents are JSON; every route in the table answers a
 * request on its own path and method. */
#include "pages/pages.h"
#include "rest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A concrete path for a route: each {name} becomes "1". */
static size_t
concrete(const char *path, char *out, size_t outlen)
{
    size_t w = 0;

    while (*path && w + 2 < outlen) {
        if (*path == '{') {
            const char *close = strchr(path, '}');
            if (close == NULL)
                break;
            out[w++] = '1';
            path = close + 1;
        } else {
            out[w++] = *path++;
        }
    }
    out[w] = '\0';
    return w;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *infos = json_loadb((const char *)data, size, 0, NULL), *conflicts, *routes, *r;
    char *text[2] = {NULL, NULL};
    size_t len[2], i;
    gw_rest *t;

    if (!json_is_array(infos)) {
        json_decref(infos);
        return 0;
    }
    conflicts = json_array();
    t = gw_rest_build(infos, conflicts);
    if (t == NULL)
        abort();
    json_array_foreach(conflicts, i, r)
        if (!json_is_string(r))
            abort();
    routes = gw_rest_routes(t);
    if (json_array_size(routes) != gw_rest_count(t))
        abort();
    json_array_foreach(routes, i, r) {
        char path[NRPC_MAX_ROUTE + 1], allow[64], err[256];
        const char *method = json_string_value(json_object_get(r, "method"));
        size_t n = concrete(json_string_value(json_object_get(r, "path")), path, sizeof path);
        gw_rest_call c;
        gw_rest_result res = gw_rest_match(t, method, path, n, NULL, &c, allow, sizeof allow,
                                           err, sizeof err);
        if (res == GW_REST_NONE || res == GW_REST_METHOD)
            abort();
        if (res == GW_REST_MATCH) {
            gw_rest_call_done(&c);
        } else {
            json_t *msg = json_string(err); /* the message goes out as JSON */
            if (msg == NULL)
                abort();
            json_decref(msg);
        }
    }
    if (gw_catalog_build(infos, text, len) == 0) {
        json_t *a = json_loadb(text[0], len[0], 0, NULL), *b = json_loadb(text[1], len[1], 0, NULL);
        if (a == NULL || b == NULL)
            abort();
        json_decref(a);
        json_decref(b);
        free(text[0]);
        free(text[1]);
    }
    json_decref(routes);
    json_decref(conflicts);
    gw_rest_free(t);
    json_decref(infos);
    return 0;
}
