/*
 * catalog_doc.c: the documents of the catalog, built from $SRV.INFO
 * replies: the services document of GET /services and, through openapi.c,
 * the OpenAPI document. No I/O: unit-tested.
 */
#include "pages.h"
#include "bridge/rest.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int
catalog_cmp_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x ? x : "", y ? y : "");
}

static int
catalog_cmp_id(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "id"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "id"));
    return strcmp(x ? x : "", y ? y : "");
}

/* A new array with the elements of a sorted by cmp. */
static json_t *
catalog_sorted(json_t *a, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(a), i;
    json_t **v = malloc((n ? n : 1) * sizeof *v), *out = json_array();

    if (v == NULL)
        return out;
    for (i = 0; i < n; i++)
        v[i] = json_array_get(a, i);
    qsort(v, n, sizeof *v, cmp);
    for (i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

static const char *
catalog_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* One endpoint of an INFO reply in our shape: the metadata strings become
 * JSON ("params" is JSON text; null when a service did not publish it).
 * "access" is who may call it; a service that does not say (an older
 * natsrpc, another framework) needs an authenticated caller. */
static json_t *
catalog_endpoint(json_t *ep)
{
    json_t *md = json_object_get(ep, "metadata");
    const char *params = json_string_value(json_object_get(md, "params"));
    json_t *p = params ? json_loads(params, JSON_DECODE_ANY, NULL) : NULL;

    const char *access = json_string_value(json_object_get(md, "access"));

    if (access == NULL || !nrpc_access_valid(access))
        access = NRPC_AUTHENTICATED;
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:b, s:s}", "name", catalog_str(ep, "name"),
                     "subject", catalog_str(ep, "subject"), "queue_group",
                     catalog_str(ep, "queue_group"), "description", catalog_str(md, "description"),
                     "params", json_is_array(p) ? p : (json_decref(p), json_null()), "varargs",
                     strcmp(catalog_str(md, "varargs"), "true") == 0, "varkw",
                     strcmp(catalog_str(md, "varkw"), "true") == 0, "access", access);
}

/* The events and topics a service declares ($SRV.INFO metadata "emits",
 * "handles" and "topics", JSON text) as arrays on svc: [] when it declares
 * none. */
static void
catalog_events(json_t *svc, json_t *md)
{
    static const char *const kinds[] = {"emits", "handles", "topics"};
    size_t k;

    for (k = 0; k < 3; k++) {
        const char *text = json_string_value(json_object_get(md, kinds[k]));
        json_t *list = text ? json_loads(text, 0, NULL) : NULL;
        json_object_set_new(svc, kinds[k], json_is_array(list) ? list : json_array());
        if (!json_is_array(list))
            json_decref(list);
    }
}

/* Groups INFO replies by service name: replicas become instances of one
 * service; endpoints are merged by name (the first reply wins). Sorted, so
 * the documents do not change order between refreshes. New. */
json_t *
gw_catalog_group(json_t *infos)
{
    json_t *by_name = json_object(), *list = json_array(), *info, *svc, *sorted;
    const char *key;
    size_t i, j;

    json_array_foreach(infos, i, info)
    {
        const char *name = json_string_value(json_object_get(info, "name"));
        json_t *eps, *ep;
        if (name == NULL || !json_is_object(info))
            continue;
        svc = json_object_get(by_name, name);
        if (svc == NULL) {
            svc = json_pack("{s:s, s:s, s:s, s:[], s:{}}", "name", name, "version",
                            catalog_str(info, "version"), "description",
                            catalog_str(info, "description"), "instances", "endpoints");
            catalog_events(svc, json_object_get(info, "metadata"));
            json_object_set_new(by_name, name, svc);
        }
        json_array_append_new(json_object_get(svc, "instances"),
                              json_pack("{s:s, s:s}", "id", catalog_str(info, "id"), "version",
                                        catalog_str(info, "version")));
        eps = json_object_get(svc, "endpoints");
        json_array_foreach(json_object_get(info, "endpoints"), j, ep)
        {
            const char *ename = json_string_value(json_object_get(ep, "name"));
            if (ename && json_object_get(eps, ename) == NULL)
                json_object_set_new(eps, ename, catalog_endpoint(ep));
        }
    }
    json_object_foreach(by_name, key, svc)
    {
        json_t *eps = json_array(), *ep;
        const char *ename;
        json_object_foreach(json_object_get(svc, "endpoints"), ename, ep)
            json_array_append(eps, ep);
        json_object_set_new(svc, "endpoints", catalog_sorted(eps, catalog_cmp_name));
        json_decref(eps);
        json_object_set_new(svc, "instances",
                            catalog_sorted(json_object_get(svc, "instances"), catalog_cmp_id));
        json_array_append(list, svc);
    }
    json_decref(by_name);
    sorted = catalog_sorted(list, catalog_cmp_name);
    json_decref(list);
    return sorted;
}

/* Builds both texts from the gathered replies; returns -1 when out of
 * memory. */
int
gw_catalog_build(json_t *infos, char **text, size_t *len)
{
    json_t *services = gw_catalog_group(infos), *doc, *openapi, *conflicts = json_array();
    gw_rest *rest = gw_rest_build(infos, conflicts);
    json_t *routes = gw_rest_routes(rest);
    char stamp[40];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gw_rest_free(rest);
    openapi = gw_openapi_build(services);
    gw_openapi_add_rest(openapi, routes);
    /* REST routes in the order the gateway tries them, and the rules it
     * refused: a route two rpcs declare, or one that does not parse. */
    doc = json_pack("{s:o, s:o, s:o, s:s}", "services", services, "routes", routes, "conflicts",
                    conflicts, "updated", stamp);
    text[GW_CATALOG_SERVICES] = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    text[GW_CATALOG_OPENAPI] = openapi ? json_dumps(openapi, JSON_COMPACT) : NULL;
    json_decref(doc);
    json_decref(openapi);
    if (text[0] == NULL || text[1] == NULL) {
        free(text[0]);
        free(text[1]);
        return -1;
    }
    len[0] = strlen(text[0]);
    len[1] = strlen(text[1]);
    return 0;
}
