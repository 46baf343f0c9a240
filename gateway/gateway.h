/*
 * gateway.h: what the three parts of natsrpc-gateway share.
 *
 * natsrpc-gateway turns HTTP and WebSocket traffic into NATS requests. Its
 * folders are its parts:
 *
 *   main.c     settings from the environment, --help, signals, start and drain
 *   loop.c     the gateway loops: one thread, one libuv loop each, driving
 *              that loop's HTTP listener, NATS connection and WebSockets
 *   bridge/    the HTTP -> NATS bridge: `POST /<service>.<method>` becomes a
 *              NATS request (route.c parses, http.c does the I/O)
 *   ws/        WAMP v2 over WebSocket at /websocket (ws_frame.c and wamp.c
 *              parse, ws.c and wamp_router.c do the I/O)
 *   pages/     the introspection pages and the front end: /services,
 *              /openapi.json, /docs, /metadata, /metrics, static files
 *              (catalog_doc.c, openapi.c and metrics.c build documents;
 *              catalog.c, pages.c and static.c do the I/O)
 *
 * Every part includes this header; main.c includes all three.
 *
 * Threads. GATEWAY_THREADS loops (default: one per CPU), each a thread
 * named gw-loop-<n> that runs one libuv loop. A loop owns a listening
 * socket (all on the same port: SO_REUSEPORT, the kernel spreads
 * connections), libmicrohttpd in external-event mode, its own NATS
 * connection (nrpc_client in loop mode), its WebSockets and WAMP topics,
 * its catalog refresh and its metrics. A request is read, sent to NATS,
 * answered and written by one thread, with no lock and no hand-off; loops
 * share nothing but counters. The main thread only waits for signals and
 * steps the loops through a drain. Besides, nats.c runs its library
 * threads (timers, connection callbacks, garbage collection).
 */
#ifndef NRPC_GATEWAY_H
#define NRPC_GATEWAY_H

#include <natsrpc.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Hard cap of a request's timeout, whatever the caller asks for. */
#define GW_MAX_TIMEOUT_MS 300000

/* The settings of main.c's table, read once at start. */
typedef struct {
    const char *host;      /* GATEWAY_HOST: bind only this address */
    unsigned port;         /* GATEWAY_PORT; 0 picks a free port */
    unsigned threads;      /* GATEWAY_THREADS: gateway loops (0 at parse: one per CPU) */
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
    const struct gw_auth *auth; /* GATEWAY_AUTH, loaded (auth/); NULL: auth is off */
    /* Limits at the edge (edge/edge.h). */
    const char *cors_origins;  /* GATEWAY_CORS_ORIGINS: other origins whose pages may call */
    unsigned conn_per_addr;    /* GATEWAY_MAX_CONNECTIONS_PER_ADDRESS (0: no cap) */
    unsigned rate;             /* GATEWAY_RATE_LIMIT: requests/s per address (0: off) */
    unsigned rate_burst;       /* GATEWAY_RATE_BURST: requests saved up per address */
    int64_t header_timeout_ms; /* GATEWAY_HEADER_TIMEOUT: a new connection's first headers */
    size_t body_memory;        /* GATEWAY_MAX_BODY_MEMORY: unfinished bodies, every loop */
    size_t wamp_max_subs;       /* GATEWAY_WAMP_MAX_SUBSCRIPTIONS: per session (0: no cap) */
    unsigned wamp_publish_rate; /* GATEWAY_WAMP_PUBLISH_RATE: per session per second */
    unsigned wamp_max_calls;    /* GATEWAY_WAMP_MAX_CALLS: in flight per session */
} gw_config;


/* ---------------------------------------------------------------------------
 * loop.c: the gateway loops.
 */
typedef struct gw_http gw_http;       /* bridge/http.c */
typedef struct gw_ws gw_ws;           /* ws/ws.c */
typedef struct gw_catalog gw_catalog; /* pages/catalog.c */
typedef struct gw_metrics gw_metrics; /* pages/metrics.c */
typedef struct gw_gateway gw_gateway; /* every loop */

/* One loop. Every field is its thread's, but in_flight (read by main.c's
 * drain) and what gw_gateway_health reads. */
typedef struct gw_loop {
    gw_gateway *gw;
    unsigned index;
    const gw_config *cfg; /* the gateway's copy, read-only */
    uv_loop_t uv;
    nrpc_client *client; /* loop mode on uv; NULL once the drain released it */
    gw_http *http;       /* the loop's MHD daemon */
    gw_ws *ws;           /* its WebSockets */
    gw_catalog *catalog; /* its catalog refresh */
    gw_metrics *metrics; /* its counters (/metrics adds every loop's) */
    atomic_int in_flight; /* HTTP requests received and not completed */
    int draining;         /* answers close their connection */
    /* auth/ (NULL when auth is off): identification; who may call what
     * comes from the catalog's snapshot. */
    struct gw_auth_loop *auth;
} gw_loop;

/* Adds d to a counter only the calling loop writes (others may read it). */
static inline void
gw_count_add(atomic_int *c, int d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

/* NATS as /healthz and /metrics see it, over every loop's connection. */
typedef struct {
    int loops;
    int connected;          /* loops whose connection is up */
    int rebuilding;         /* loops whose connection NATS closed for good */
    unsigned long long rebuilds;   /* the most any loop's client rebuilt */
    unsigned long long reconnects; /* the most any loop's connection reconnected */
    int in_flight;          /* HTTP requests, every loop */
    int closing;            /* the drain is releasing the connections */
} gw_health;

/* Reads it from a loop's thread. While the drain releases the loops'
 * connections only l's own is read (the others may be gone). */
void gw_gateway_health(gw_loop *l, gw_health *out);
/* Every loop's metrics, for /metrics (n of them). */
gw_metrics *const *gw_gateway_metrics(gw_gateway *gw, size_t *n);

/* Opens cfg->threads listening sockets on one port and starts a loop on
 * each; returns once every loop is serving (or has failed: then none is
 * left running). cfg is copied. *out is new: gw_gateway_stop. */
nrpc_status gw_gateway_start(gw_gateway **out, const gw_config *cfg);
/* The port every loop listens on (useful with port 0). */
unsigned gw_gateway_port(gw_gateway *gw);
/* Main thread. Stops accepting connections; requests already received go
 * on, every response from now on closes its connection; WebSockets close
 * (1001) without a WAMP GOODBYE, so that clients reconnect. Waits for every
 * loop. */
void gw_gateway_quiesce(gw_gateway *gw);
/* HTTP requests received and not completed, every loop. Any thread. */
int gw_gateway_in_flight(gw_gateway *gw);
/* Main thread, after quiesce. Each loop destroys its NATS client: what
 * still waits is answered 503, later requests get 503 too. Waits for every
 * loop. */
void gw_gateway_release(gw_gateway *gw);
/* Main thread. Ends every loop (MHD stopped, sockets closed), joins the
 * threads and frees gw. NULL-safe. */
void gw_gateway_stop(gw_gateway *gw);

#endif /* NRPC_GATEWAY_H */
