/*
 * pages.h: the introspection pages and the front end's files.
 *
 *   catalog_doc.c  INFO replies -> the services document (no I/O)
 *   openapi.c      the services document -> OpenAPI 3.1 (no I/O)
 *   metrics.c      the counters of /metrics and their text
 *   catalog.c      the refresh of the catalog: $SRV.INFO gathered over NATS
 *   pages.c        GET /services, /openapi.json, /docs, /metadata, /metrics
 *   static.c       the front end's files and the dispatch of GET /websocket
 */
#ifndef NRPC_GW_PAGES_H
#define NRPC_GW_PAGES_H

#include "gateway.h"

#include <stdatomic.h>

#include <pthread.h>
#include <uv.h>

typedef struct gw_ws gw_ws; /* ws/ws.h */
struct MHD_Connection;

/* ---------------------------------------------------------------------------
 * static.c: the front end (GET / and its files from GATEWAY_STATIC_DIR),
 * and the dispatch of GET /websocket.
 */

/* 1 if a GET or HEAD of url is ours: /websocket, /, or a file under
 * cfg->static_dir. Called on the first call of a request. */
int gw_front_match(const gw_config *cfg, const char *url, const char *method);
/* Queues the answer for a request gw_front_match took. Sets *status;
 * returns an enum MHD_Result. */
int gw_front_respond(gw_ws *ws, const gw_config *cfg, struct MHD_Connection *conn,
                     const char *url, const char *method, int *status);

/* ---------------------------------------------------------------------------
 * metrics.c: GET /metrics (Prometheus text format).
 */
#define GW_METRICS_MAX_RPCS 1000 /* distinct rpc labels; later ones count as "other" */

typedef struct gw_metrics gw_metrics;
typedef struct {
    int in_flight;
    int nats_connected;
    uint64_t nats_reconnects;
} gw_metrics_gauges;

/* New, or NULL when out of memory: gw_metrics_free. One per loop: only
 * that loop's thread may observe into it. */
gw_metrics *gw_metrics_new(void);
void gw_metrics_free(gw_metrics *m);
/* Counts one answered request: rpc (len bytes) is its subject, or NULL for
 * a refused path (rpc="invalid"); status the HTTP status; seconds its time.
 * Takes no lock; the owning loop's thread only. NULL-safe. */
void gw_metrics_observe(gw_metrics *m, const char *rpc, size_t len, int status, double seconds);
/* The text of /metrics over n instances (every loop's), added up: new
 * (free), *len its length; NULL when out of memory. Any thread. */
char *gw_metrics_render(gw_metrics *const *ms, size_t n, const gw_metrics_gauges *g,
                        size_t *len);

/* ---------------------------------------------------------------------------
 * catalog.c: the services on NATS, gathered from $SRV.INFO.
 */
#define GW_CATALOG_REFRESH_MS 5000 /* background refresh period */
#define GW_CATALOG_WAIT_MS 400     /* how long one gather collects replies */
#define GW_CATALOG_RETRY_MS 1000   /* retry period while NATS is down */

typedef struct gw_catalog gw_catalog;
/* GW_CATALOG_NOTIFY: no document; cb gets NULL, without the documents'
 * lock held, so it may read the catalog (gw_catalog_access). */
typedef enum {
    GW_CATALOG_SERVICES = 0,
    GW_CATALOG_OPENAPI = 1,
    GW_CATALOG_NOTIFY = 2
} gw_catalog_doc;
/* Receives a document's JSON text (borrowed: copy it). */
typedef void (*gw_catalog_cb)(void *closure, const char *text, size_t len);

/* The documents every loop answers from, so that a page shows the same
 * catalog whichever loop serves it. Whichever loop gathers last replaces
 * them. Its mutex is taken on the pages' path only, never by an rpc. */
typedef struct {
    pthread_mutex_t mu;
    char *text[2]; /* indexed by gw_catalog_doc */
    size_t len[2];
    int64_t updated_ms; /* monotonic; 0: never */
    /* The latest gather as one immutable snapshot (gw_catalog_snap),
     * replaced under mu; generation counts the replacements (atomic), so a
     * loop takes a new reference only when it moved on. NULL until the
     * first gather. */
    struct gw_catalog_snap *snap;
    _Atomic uint64_t generation;
    json_t *conflicts_logged; /* REST conflicts logged already (strings) */
    /* Every loop's catalog, woken when the rpc set changes so that it tells
     * its client which rpcs send heartbeats; under mu. */
    struct gw_catalog *listeners;
} gw_catalog_docs;

/* What one gather found, built once and shared by every loop: immutable,
 * freed with its last reference. A loop holds the latest it has seen
 * (gw_catalog_snapshot), so everything it reads of one catalog comes from
 * one gather. */
typedef struct gw_catalog_snap {
    atomic_int refs;
    uint64_t generation;
    json_t *infos;                /* the INFO replies: the REST tables' source */
    json_t *declared;             /* infos, and what absent services said (gw_catalog_declared) */
    struct gw_access_map *access; /* who may call and watch what (auth/), from declared */
    struct gw_rpc_set *rpcs;      /* rpc subjects, sorted: metrics labels, heartbeats; declared */
    /* The gather passed GW_CATALOG_MAX_REPLIES: a responder flooded it, and
     * a service's own reply may be among those ignored, so what it does not
     * list is not known to be undeclared (the gate answers 503). */
    int flooded;
} gw_catalog_snap;

/* What the services declare, as of a gather: its INFO replies (infos), and
 * for every service that did not answer it (stopped, busy, behind a slow
 * route) the replies it gave last (from prev, the previous gather's
 * declared; NULL for none). Access and heartbeats come from here, so that
 * one missed gather neither opens a scoped rpc to every signed-in caller
 * nor stops watching a frozen replica's calls; the pages and REST routes
 * list what answered. A service that answers is read afresh (its dropped
 * rpcs go). Services are listed in the order the gateway first met them
 * (replicas together), and at most max_carried replies are carried, of the
 * services met first: a responder that answers INFO under ever new names
 * can neither grow it nor, when those names miss the next gather, push out
 * what a longer-known service declared. New array (the replies shared, not
 * copied), NULL when out of memory. */
json_t *gw_catalog_declared(json_t *infos, json_t *prev, size_t max_carried);
/* The replies of absent services a gateway keeps (gw_catalog_declared). */
#define GW_CATALOG_MAX_CARRIED 1024
/* The INFO replies one gather takes (one per replica): past it, a flood. */
#define GW_CATALOG_MAX_REPLIES 4096

/* The loop's snapshot of the latest gather, taken anew when another gather
 * happened since (one atomic read otherwise): borrowed, valid until the
 * next call on this loop's thread, so copy what must outlive a callback.
 * NULL before the first gather. c may be NULL (NULL). */
const gw_catalog_snap *gw_catalog_snapshot(gw_catalog *c);
/* 1 if subject (len bytes) is an rpc of the loop's latest gather. */
int gw_catalog_known(gw_catalog *c, const char *subject, size_t len);
/* The docs a loop's catalog answers from (borrowed). */
gw_catalog_docs *gw_catalog_docs_of(gw_catalog *c);

/* Empty documents until the first gather. -1 when out of memory. */
int gw_catalog_docs_init(gw_catalog_docs *d);
void gw_catalog_docs_free(gw_catalog_docs *d);

/* Starts a loop's catalog with client (borrowed: stop the catalog before
 * destroying it), answering from docs (borrowed, shared). periodic: it also
 * gathers every GW_CATALOG_REFRESH_MS (one loop does). Everything runs on
 * the loop's thread. *out is new: gw_catalog_free. */
nrpc_status gw_catalog_start(gw_catalog **out, uv_loop_t *uv, nrpc_client *client,
                             gw_catalog_docs *docs, int periodic);
/* Calls cb with the document: at once when it is fresh (and refresh is 0),
 * else after this loop's next gather. */
void gw_catalog_get(gw_catalog *c, gw_catalog_doc doc, int refresh, gw_catalog_cb cb,
                    void *closure);
/* Stops gathering and answers waiters; later gets answer at once with the
 * last documents. The client is not used afterwards except by a gather in
 * flight, which the client's destroy ends. NULL-safe. */
void gw_catalog_stop(gw_catalog *c);
/* Stops and frees (once the loop has closed its timer, and after a gather
 * in flight has ended). NULL-safe. */
void gw_catalog_free(gw_catalog *c);
/* The loop's REST table (bridge/rest.h), rebuilt from the latest gather
 * when any loop's gather changed it: borrowed, valid until the next call
 * on this loop. NULL before the first gather (or out of memory). The
 * loop's thread only; takes the documents' mutex only to rebuild. */
struct gw_rest;
const struct gw_rest *gw_catalog_rest(gw_catalog *c);
/* A request found no REST route (or its rpc no responder): gathers again,
 * at most once per GW_REST_MISS_REFRESH_MS on this loop, so a service
 * started since shows its routes without waiting for the periodic refresh.
 * The request itself is answered now. */
#define GW_REST_MISS_REFRESH_MS 1000
void gw_catalog_rest_missed(gw_catalog *c);
/* 1 if this loop started a gather less than ms ago. */
int gw_catalog_gathered_within(gw_catalog *c, int64_t ms);
/* catalog_doc.c: INFO replies -> the "services" array of GET /services: new. */
json_t *gw_catalog_group(json_t *infos);
/* catalog_doc.c: both documents (indexed by gw_catalog_doc) from INFO
 * replies: text[i] new (free), len[i] its length. -1 when out of memory. */
int gw_catalog_build(json_t *infos, char **text, size_t *len);

/* ---------------------------------------------------------------------------
 * openapi.c: the OpenAPI 3.1 document of a "services" array: new.
 */
json_t *gw_openapi_build(json_t *services);
/* openapi.c: the JSON schema of one declared parameter ("params"): new. */
json_t *gw_openapi_param_schema(json_t *param);
/* openapi_rest.c: adds the REST routes (gw_rest_routes' array) to the
 * paths of an OpenAPI document built by gw_openapi_build. */
void gw_openapi_add_rest(json_t *doc, json_t *routes);

/* ---------------------------------------------------------------------------
 * pages.c: GET /services, /openapi.json, /docs, /metadata, /metrics.
 */
typedef enum {
    GW_PAGE_NONE = 0,
    GW_PAGE_SERVICES,
    GW_PAGE_OPENAPI,
    GW_PAGE_METADATA,
    GW_PAGE_METRICS,
    GW_PAGE_DOCS,      /* Swagger UI's page */
    GW_PAGE_DOCS_FILE, /* /docs/<file> */
} gw_page_kind;

typedef struct {
    gw_catalog *catalog;        /* the loop's */
    gw_metrics *const *metrics; /* every loop's, for /metrics */
    size_t nmetrics;
    const char *docs_dir; /* GATEWAY_DOCS_DIR: the vendored swagger-ui-dist files */
    gw_metrics_gauges gauges;
} gw_page_env;

/* Receives a page: status, content type (static) and body (malloc'd, now
 * the receiver's; NULL with len 0 when out of memory). */
typedef void (*gw_page_cb)(void *closure, int status, const char *content_type, char *body,
                           size_t len);

/* Which page path is (already percent-decoded); GW_PAGE_NONE if none. */
gw_page_kind gw_page_match(const char *path);
/* Answers a GET of a page through cb, at once or later from another thread
 * (?refresh=1 or a stale catalog). */
void gw_page_serve(const gw_page_env *env, gw_page_kind kind, const char *path, int refresh,
                   gw_page_cb cb, void *closure);

#endif /* NRPC_GW_PAGES_H */
