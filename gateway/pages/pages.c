/*
 * pages.c: the gateway's GET routes besides /healthz.
 *
 *   /services                  the services found on NATS (catalog.c)
 *   /openapi.json              OpenAPI 3.1 of every rpc found (openapi.c)
 *   /docs, /docs/              Swagger UI on /openapi.json
 *   /docs/<file>               Swagger UI's files, from GATEWAY_DOCS_DIR
 *   /metadata, /metadata.json, /v1.0/metadata, /v1.0/metadata.json
 *   /metrics                   Prometheus text (metrics.c)
 *
 * http.c routes GET and HEAD of these paths here; the answer comes through
 * a callback, at once or (for a catalog that must be refreshed first) later,
 * on the same loop.
 */
#include "pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the source lives; shown by /metadata. */
#ifndef GW_REPOSITORY_URL
#define GW_REPOSITORY_URL "https://github.com/natsrpc/natsrpc"
#endif

static const char JSON_TYPE[] = "application/json";

gw_page_kind
gw_page_match(const char *path)
{
    static const struct {
        const char *path;
        gw_page_kind kind;
    } pages[] = {
        {"/services", GW_PAGE_SERVICES},
        {"/openapi.json", GW_PAGE_OPENAPI},
        {"/metadata", GW_PAGE_METADATA},
        {"/metadata.json", GW_PAGE_METADATA},
        {"/v1.0/metadata", GW_PAGE_METADATA},
        {"/v1.0/metadata.json", GW_PAGE_METADATA},
        {"/metrics", GW_PAGE_METRICS},
        {"/docs", GW_PAGE_DOCS},
        {"/docs/", GW_PAGE_DOCS},
        {"/docs/index.html", GW_PAGE_DOCS},
    };
    size_t i;

    if (path == NULL)
        return GW_PAGE_NONE;
    for (i = 0; i < sizeof pages / sizeof pages[0]; i++)
        if (strcmp(path, pages[i].path) == 0)
            return pages[i].kind;
    if (strncmp(path, "/docs/", 6) == 0)
        return GW_PAGE_DOCS_FILE;
    return GW_PAGE_NONE;
}

/* A malloc'd copy of text, or the callback gets 500. */
static void
pages_answer_copy(gw_page_cb cb, void *closure, int status, const char *ctype, const char *text,
                  size_t len)
{
    char *body = malloc(len ? len : 1);

    if (body == NULL) {
        cb(closure, 500, JSON_TYPE, NULL, 0);
        return;
    }
    memcpy(body, text, len);
    cb(closure, status, ctype, body, len);
}

static void
pages_error(gw_page_cb cb, void *closure, int status, const char *type, const char *message)
{
    json_t *e = nrpc_error_body(status, type, message);
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;

    json_decref(e);
    cb(closure, status, JSON_TYPE, text, text ? strlen(text) : 0);
}

typedef struct {
    gw_page_cb cb;
    void *closure;
} pages_wait;

/* Runs under the catalog's lock: copy and go. */
static void
pages_on_catalog(void *closure, const char *text, size_t len)
{
    pages_wait w = *(pages_wait *)closure;

    free(closure);
    pages_answer_copy(w.cb, w.closure, 200, JSON_TYPE, text, len);
}

static void
pages_metadata(gw_page_cb cb, void *closure)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", "natsrpc-gateway", "version",
                          NRPC_VERSION, "repository", GW_REPOSITORY_URL, "description",
                          "HTTP gateway for natsrpc services: POST /<service>.<method> with a "
                          "body [args, kwargs] calls that rpc over NATS",
                          "api_version", "1.0", "auth", "none");
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    cb(closure, text ? 200 : 500, JSON_TYPE, text, text ? strlen(text) : 0);
}

/* Swagger UI's page: its files come from /docs/<file>, the document from
 * /openapi.json. Served from here so it needs nothing but the vendored
 * swagger-ui-dist files. */
static const char DOCS_INDEX[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>natsrpc gateway API</title>\n"
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">\n"
    "<link rel=\"icon\" type=\"image/png\" href=\"/docs/favicon-32x32.png\">\n"
    "</head>\n"
    "<body>\n"
    "<div id=\"swagger-ui\"></div>\n"
    "<script src=\"/docs/swagger-ui-bundle.js\"></script>\n"
    "<script src=\"/docs/natsrpc-init.js\"></script>\n"
    "</body>\n"
    "</html>\n";

static const char DOCS_INIT[] = "window.onload = function () {\n"
                                "  window.ui = SwaggerUIBundle({\n"
                                "    url: \"/openapi.json\",\n"
                                "    dom_id: \"#swagger-ui\",\n"
                                "    deepLinking: true,\n"
                                "  });\n"
                                "};\n";

static const char *
pages_file_type(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (dot == NULL)
        return "application/octet-stream";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".map") == 0 || strcmp(dot, ".json") == 0)
        return JSON_TYPE;
    return "application/octet-stream";
}

/* GET /docs/<name>: a file of the vendored Swagger UI. Names are one path
 * segment of [A-Za-z0-9._-] not starting with '.', so nothing outside
 * docs_dir can be named. */
static void
pages_docs_file(const char *docs_dir, const char *name, gw_page_cb cb, void *closure)
{
    char path[4096];
    FILE *f;
    long size;
    char *body;
    const char *p;

    if (strcmp(name, "natsrpc-init.js") == 0) {
        pages_answer_copy(cb, closure, 200, "text/javascript; charset=utf-8", DOCS_INIT,
                          sizeof DOCS_INIT - 1);
        return;
    }
    for (p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            break;
    if (*p != '\0' || name[0] == '\0' || name[0] == '.' || p - name > 128) {
        pages_error(cb, closure, 404, "not_found", "no such file under /docs/");
        return;
    }
    snprintf(path, sizeof path, "%s/%s", docs_dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "no such file under /docs/: %s (is Swagger UI vendored? run npm ci at the "
                 "repository root)",
                 name);
        pages_error(cb, closure, 404, "not_found", msg);
        return;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > (64L << 20) ||
        fseek(f, 0, SEEK_SET) != 0 || (body = malloc((size_t)size + 1)) == NULL) {
        fclose(f);
        pages_error(cb, closure, 500, "internal", "cannot read the file");
        return;
    }
    if (fread(body, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(body);
        pages_error(cb, closure, 500, "internal", "cannot read the file");
        return;
    }
    fclose(f);
    cb(closure, 200, pages_file_type(name), body, (size_t)size);
}

void
gw_page_serve(const gw_page_env *env, gw_page_kind kind, const char *path, int refresh,
              gw_page_cb cb, void *closure)
{
    switch (kind) {
    case GW_PAGE_METADATA: pages_metadata(cb, closure); return;
    case GW_PAGE_METRICS: {
        size_t len = 0;
        char *text = gw_metrics_render(env->metrics, env->nmetrics, &env->gauges, &len);
        if (text == NULL)
            pages_error(cb, closure, 500, "internal", "out of memory");
        else
            cb(closure, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        return;
    }
    case GW_PAGE_SERVICES:
    case GW_PAGE_OPENAPI: {
        pages_wait *w = malloc(sizeof *w);
        if (w == NULL || env->catalog == NULL) {
            free(w);
            pages_error(cb, closure, 503, "unavailable", "service discovery is not running");
            return;
        }
        w->cb = cb;
        w->closure = closure;
        gw_catalog_get(env->catalog,
                       kind == GW_PAGE_SERVICES ? GW_CATALOG_SERVICES : GW_CATALOG_OPENAPI, refresh,
                       pages_on_catalog, w);
        return;
    }
    case GW_PAGE_DOCS:
        pages_answer_copy(cb, closure, 200, "text/html; charset=utf-8", DOCS_INDEX,
                          sizeof DOCS_INDEX - 1);
        return;
    case GW_PAGE_DOCS_FILE: pages_docs_file(env->docs_dir, path + 6, cb, closure); return;
    case GW_PAGE_NONE: break;
    }
    pages_error(cb, closure, 404, "not_found", "no such page");
}
