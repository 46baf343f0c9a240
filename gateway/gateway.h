/*
 * gateway.h: private declarations of natsrpc-gateway, the HTTP front end
 * that turns `POST /<service>.<method>` into a NATS request.
 *
 *   main.c   settings from the environment, --help, signals, start and drain
 *   http.c   the libmicrohttpd access handler and the per-request state
 *   route.c  path -> subject, timeout parsing (no I/O: unit-tested and fuzzed)
 *   static.c the front end's files and the dispatch of GET /websocket
 *   ws*.c, wamp*.c  WAMP over WebSocket on one event-loop thread (see ws.h)
 */
#ifndef NRPC_GATEWAY_H
#define NRPC_GATEWAY_H

#include <natsrpc.h>

#include <stddef.h>
#include <stdint.h>

/* Hard cap of a request's timeout, whatever the caller asks for. */
#define GW_MAX_TIMEOUT_MS 300000

/* ---------------------------------------------------------------------------
 * route.c
 */
typedef enum {
    GW_ROUTE_RPC,       /* "/<service>.<method>": a subject we may forward */
    GW_ROUTE_HEALTHZ,   /* "/healthz" */
    GW_ROUTE_NOT_FOUND, /* "/", or a path with more than one segment */
    GW_ROUTE_BAD_RPC,   /* one segment, but not an rpc subject ($, *, >, _INBOX...) */
} gw_route_kind;

/* Classifies a request path (already percent-decoded by the HTTP layer).
 * For GW_ROUTE_RPC and GW_ROUTE_BAD_RPC, *subject and *len point into path
 * (borrowed), past the leading '/'. */
gw_route_kind gw_route_match(const char *path, const char **subject, size_t *len);

/* Parses a timeout in seconds ("2", "0.25", "1e1"): finite and > 0. Values
 * above max_ms are capped to max_ms; anything under a millisecond becomes
 * 1 ms. Returns 0 and sets *ms, or -1 when text is not such a number. */
int gw_parse_timeout(const char *text, int64_t max_ms, int64_t *ms);

/* 1 if a WebSocket handshake with this Origin header (NULL: none, a
 * program rather than a browser) may go on: no Origin, the same host as the
 * request's Host header, "*" in allowed, or an exact origin listed in
 * allowed (comma-separated, e.g. "https://app.example.com"). */
int gw_origin_allowed(const char *origin, const char *host, const char *allowed);

/* ---------------------------------------------------------------------------
 * http.c
 */
typedef struct {
    const char *host;      /* GATEWAY_HOST: bind only this address */
    unsigned port;         /* GATEWAY_PORT; 0 picks a free port */
    unsigned threads;      /* GATEWAY_THREADS: MHD worker threads */
    size_t max_body;       /* GATEWAY_MAX_BODY: bytes */
    int64_t timeout_ms;    /* GATEWAY_TIMEOUT: default per request */
    unsigned conn_limit;   /* GATEWAY_MAX_CONNECTIONS (lowered to fit RLIMIT_NOFILE) */
    unsigned conn_timeout; /* GATEWAY_IDLE_TIMEOUT: seconds an idle connection lives */
    int access_log;        /* GATEWAY_ACCESS_LOG: one line per request */
    size_t ws_max_message;  /* GATEWAY_WS_MAX_MESSAGE: bytes of one WebSocket message */
    size_t ws_max_queue;    /* GATEWAY_WS_MAX_QUEUE: bytes queued to one socket at most */
    int64_t ws_ping_ms;     /* GATEWAY_WS_PING: keep-alive ping after this much silence */
    int64_t ws_hello_ms;    /* GATEWAY_WS_HELLO_TIMEOUT: socket without a session closed */
    const char *ws_origins; /* GATEWAY_WS_ORIGINS: other origins whose pages may connect */
    const char *wamp_realm; /* GATEWAY_WAMP_REALM: the one WAMP realm */
    const char *static_dir; /* GATEWAY_STATIC_DIR: the front end's files, served at / */
    const char *docs_dir;   /* GATEWAY_DOCS_DIR: Swagger UI's files, served at /docs/ */
} gw_config;

typedef struct gw_server gw_server;

/* Starts the HTTP daemon on cfg (copied) sending requests through client
 * (borrowed; must outlive the server). *out is new: gw_server_stop. */
nrpc_status gw_server_start(gw_server **out, const gw_config *cfg, nrpc_client *client);
/* The port the daemon listens on (useful with port 0). */
unsigned gw_server_port(gw_server *gw);
/* Stops accepting connections; requests already received go on, and every
 * response from now on closes its connection. */
void gw_server_quiesce(gw_server *gw);
/* Stops handing requests to the client (later ones get 503) and returns it,
 * so the caller can destroy it without a request racing in. */
nrpc_client *gw_server_detach_client(gw_server *gw);
/* Requests received and not yet answered. */
int gw_server_in_flight(gw_server *gw);
/* Stops the daemon and frees gw. Every suspended request must have been
 * resumed (answered) before: see main.c's drain. NULL-safe. */
void gw_server_stop(gw_server *gw);

/* ---------------------------------------------------------------------------
 * ws.c (with ws_frame.c, wamp.c, wamp_router.c; see ws.h): GET /websocket,
 * WAMP v2 over WebSocket, every socket on one event-loop thread.
 */
typedef struct gw_ws gw_ws;
struct MHD_Connection;

/* Starts the loop thread; cfg is copied, client borrowed (must outlive
 * the loop, see gw_ws_quiesce). *out is new: gw_ws_stop. */
nrpc_status gw_ws_start(gw_ws **out, const gw_config *cfg, nrpc_client *client);
/* Says GOODBYE (wamp.close.system_shutdown) and closes every socket (1001),
 * drops the NATS subscriptions and stops using the client; later upgrades
 * are refused. Waits for the loop to do it. Idempotent; NULL-safe. */
void gw_ws_quiesce(gw_ws *ws);
/* Closes what is left, stops the thread, frees ws. Call before
 * MHD_stop_daemon (every upgraded socket goes back to MHD). NULL-safe. */
void gw_ws_stop(gw_ws *ws);
/* Answers GET /websocket on an MHD thread: 101 and the socket moves to the
 * loop, or an error (400, 426, 503). Sets *status; returns an enum
 * MHD_Result. */
int gw_ws_upgrade(gw_ws *ws, struct MHD_Connection *conn, int *status);

/* Counters of the WebSocket side (process-wide), e.g. for /metrics. */
typedef struct {
    long long sockets_open;   /* WebSocket connections open now */
    long long sockets_total;  /* accepted since start */
    long long sessions;       /* WAMP sessions established now */
    long long topics;         /* NATS subscriptions held for WAMP topics now */
    long long subscriptions;  /* (session, topic) subscriptions now */
    long long dropped_slow;   /* sockets dropped: outgoing queue over GATEWAY_WS_MAX_QUEUE */
    long long dropped_dead;   /* sockets dropped: no answer to keep-alive pings */
    long long messages_in;    /* WebSocket messages received */
    long long events_out;     /* EVENTs queued to sockets */
    long long nats_dropped;   /* NATS messages dropped: the loop's inbox was full */
    long long calls;          /* CALLs forwarded to NATS */
    long long publishes;      /* PUBLISHes forwarded to NATS */
} gw_ws_stats;

/* Reads the counters; callable from any thread. */
void gw_ws_stats_read(gw_ws_stats *out);

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

/* New, or NULL when out of memory: gw_metrics_free. */
gw_metrics *gw_metrics_new(void);
void gw_metrics_free(gw_metrics *m);
/* Counts one answered request: rpc (len bytes) is its subject, or NULL for
 * a refused path (rpc="invalid"); status the HTTP status; seconds its time.
 * Thread-safe, NULL-safe. */
void gw_metrics_observe(gw_metrics *m, const char *rpc, size_t len, int status, double seconds);
/* The text of /metrics: new (free), *len its length; NULL when out of
 * memory. */
char *gw_metrics_render(gw_metrics *m, const gw_metrics_gauges *g, size_t *len);

/* ---------------------------------------------------------------------------
 * catalog.c: the services on NATS, gathered from $SRV.INFO.
 */
#define GW_CATALOG_REFRESH_MS 5000 /* background refresh period */
#define GW_CATALOG_WAIT_MS 400     /* how long one gather collects replies */
#define GW_CATALOG_RETRY_MS 1000   /* retry period while NATS is down */

typedef struct gw_catalog gw_catalog;
typedef enum { GW_CATALOG_SERVICES = 0, GW_CATALOG_OPENAPI = 1 } gw_catalog_doc;
/* Receives a document's JSON text (borrowed: copy it) with the catalog's
 * lock held: must not block or call back into the catalog. */
typedef void (*gw_catalog_cb)(void *closure, const char *text, size_t len);

/* Starts the refresh thread on client (borrowed: stop the catalog before
 * destroying it). *out is new: gw_catalog_free. */
nrpc_status gw_catalog_start(gw_catalog **out, nrpc_client *client);
/* Calls cb with the document: at once when it is fresh (and refresh is 0),
 * else after the next gather, on the catalog's thread. Thread-safe. */
void gw_catalog_get(gw_catalog *c, gw_catalog_doc doc, int refresh, gw_catalog_cb cb,
                    void *closure);
/* Stops the thread (after its gather in flight) and stops using the client;
 * later gets answer at once with the last documents. NULL-safe. */
void gw_catalog_stop(gw_catalog *c);
/* Stops and frees. NULL-safe. */
void gw_catalog_free(gw_catalog *c);
/* INFO replies -> the "services" array of GET /services: new. */
json_t *gw_catalog_group(json_t *infos);

/* ---------------------------------------------------------------------------
 * openapi.c: the OpenAPI 3.1 document of a "services" array: new.
 */
json_t *gw_openapi_build(json_t *services);

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
    gw_catalog *catalog;
    gw_metrics *metrics;
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

#endif /* NRPC_GATEWAY_H */
