/*
 * edge.h: limits at the edge of the gateway, checked before a request
 * reaches NATS.
 *
 *   origin.c   Origin matching, the CSRF rule and CORS preflights (no I/O:
 *              unit-tested and fuzzed)
 *   limits.c   per client address, across every loop: open connections
 *              and a token bucket of requests; the bytes held in unfinished
 *              request bodies, for the whole gateway (one lock, no I/O)
 *   edge.c     the libmicrohttpd side: the accept policy, connection
 *              notifications, the deadline for a new connection's first
 *              headers, and the checks of http.c's first call
 *
 * A "client address" is an IPv4 address, or an IPv6 /64 (one host usually
 * owns a whole /64, so a finer key would let it take every slot).
 */
#ifndef NRPC_GW_EDGE_H
#define NRPC_GW_EDGE_H

#include "gateway.h"

#include <sys/socket.h>

/* ---------------------------------------------------------------------------
 * origin.c
 */

/* 1 if origin ("scheme://host[:port]") names the host[:port] of the
 * request's Host header: a page this gateway served. NULL-safe (0). */
int gw_origin_same(const char *origin, const char *host);
/* 1 if origin is one of list's entries (separated by commas and spaces),
 * compared whole and without regard to case. "*" in list is not special
 * here. NULL-safe (0). */
int gw_origin_listed(const char *origin, const char *list);
/* 1 if a Content-Type value is application/json (parameters allowed). */
int gw_content_type_json(const char *ctype);

/* What the CSRF/CORS rule says about one request. */
typedef struct {
    int status;          /* 0: go on; else refuse with it (403) */
    const char *message; /* why, static text; NULL when status is 0 */
    int cors;            /* 1: answer with Access-Control-Allow-Origin: <origin> */
} gw_csrf_verdict;

/* The rule, on the request's headers (each NULL when absent):
 *   - a request that changes things (any method but GET, HEAD, OPTIONS)
 *     and comes from a browser, that is it carries Origin, or
 *     Sec-Fetch-Site other than "same-origin" and "none", must name an
 *     Origin that is the gateway's own (gw_origin_same) or listed, and
 *     must say Content-Type: application/json. A form of another site
 *     cannot send that type without a CORS preflight, which only listed
 *     origins pass.
 *   - a request without either header is a program's (curl, services):
 *     it goes on whatever its Content-Type, as before.
 * cors is set for a listed origin (any method), so its page may read the
 * answer. */
void gw_csrf_check(const char *method, const char *origin, const char *fetch_site,
                   const char *ctype, const char *host, const char *list, gw_csrf_verdict *out);

/* 1 if an OPTIONS request is a CORS preflight (Origin and
 * Access-Control-Request-Method present). */
int gw_cors_is_preflight(const char *method, const char *origin, const char *request_method);
/* The answer to a preflight: 204 when origin is listed (or the gateway's
 * own) and the method one we serve, else 403 with *message set. */
int gw_cors_preflight(const char *origin, const char *request_method, const char *host,
                      const char *list, const char **message);

/* What a preflight's answer allows. */
#define GW_CORS_METHODS "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
#define GW_CORS_HEADERS                                                                            \
    "Content-Type, Authorization, X-Request-Id, traceparent, X-Timeout, Idempotency-Key"
#define GW_CORS_EXPOSE "X-Request-Id, traceparent, Retry-After"
#define GW_CORS_MAX_AGE "600"

/* ---------------------------------------------------------------------------
 * limits.c: shared by every loop (one mutex).
 */

/* The table key of a client address: 16 bytes, an IPv4 address mapped
 * (::ffff:a.b.c.d) or an IPv6 /64. Returns 0, or -1 for another family. */
int gw_addr_key(const struct sockaddr *sa, uint8_t key[16]);
/* Printable form of a key (for logs): "a.b.c.d" or "xxxx:xxxx:xxxx:xxxx::/64". */
void gw_addr_text(const uint8_t key[16], char *out, size_t cap);

/* A token bucket: rate tokens a second, at most burst saved up; starts
 * full. Zeroed is ready to use. One model for every rate of the gateway
 * (requests per address, WAMP publishes per session). Not thread-safe. */
typedef struct {
    double tokens;
    int64_t last_ms;
    int primed;
} gw_bucket;
/* Takes one token. Returns 0, or the whole seconds until one is there
 * (>= 1, for Retry-After). rate 0: unlimited. */
int gw_bucket_take(gw_bucket *b, unsigned rate, unsigned burst, int64_t now_ms);
/* 1 if the bucket is full as of now_ms (it may be forgotten). */
int gw_bucket_full(gw_bucket *b, unsigned rate, unsigned burst, int64_t now_ms);

typedef struct gw_addr gw_addr; /* one client address's counters */

/* 1 if a new connection from key may be accepted now (fewer than
 * cfg->conn_per_addr open): a quick check before MHD sets it up. */
int gw_limits_may_accept(const gw_config *cfg, const uint8_t key[16]);
/* Counts a connection from key: returns its address (a reference kept
 * until gw_limits_close), or NULL when out of memory. *over is set when it
 * passes the cap (another loop accepted one at the same moment). */
gw_addr *gw_limits_open(const gw_config *cfg, const uint8_t key[16], int *over);
void gw_limits_close(gw_addr *a);
/* Takes one request token of a's bucket (cfg->rate per second, at most
 * cfg->rate_burst saved up). Returns 0, or the seconds until a token is
 * there (>= 1, for Retry-After) when the bucket is empty. rate 0: off. */
int gw_limits_take(const gw_config *cfg, gw_addr *a, int64_t now_ms);
/* Forgets addresses with no connection whose bucket has refilled: run now
 * and then (every loop's timer) so the table holds only recent clients. */
void gw_limits_sweep(const gw_config *cfg, int64_t now_ms);
/* Addresses in the table (for tests and /metrics). */
size_t gw_limits_addresses(void);

/* Body memory for the whole gateway: reserves n more bytes of unfinished
 * request bodies. 0, or -1 when that would pass cfg->body_memory (nothing
 * reserved). */
int gw_body_reserve(const gw_config *cfg, size_t n);
void gw_body_release(size_t n);
/* Bytes reserved now. */
size_t gw_body_held(void);

/* ---------------------------------------------------------------------------
 * edge.c: the libmicrohttpd side, per loop.
 */
struct MHD_Connection;
struct MHD_Response;
typedef struct gw_edge gw_edge;

/* Per request, inside http.c's gw_req (zeroed with it). */
typedef struct {
    const char *cors_origin; /* MHD's copy of Origin when the answer carries CORS headers */
    int retry_after;         /* seconds; 0: no Retry-After */
    int preflight;           /* a CORS preflight: answered 204 with the headers */
    size_t body_reserved;    /* bytes of gw_body_reserve held by this request */
} gw_edge_req;

/* The loop's part. *out is new: gw_edge_free after MHD stopped. gw_edge_arm
 * starts its timer (header deadlines, sweeps) once the daemon runs;
 * gw_edge_close closes it, on the loop. */
nrpc_status gw_edge_start(gw_edge **out, gw_loop *l);
void gw_edge_arm(gw_edge *e);
void gw_edge_close(gw_edge *e);
void gw_edge_free(gw_edge *e);

/* For MHD_start_daemon: the accept policy (apc, cls e) and
 * MHD_OPTION_NOTIFY_CONNECTION (cls e). */
int gw_edge_accept(void *e, const struct sockaddr *addr, socklen_t len);
void gw_edge_on_connection(void *e, struct MHD_Connection *conn, void **socket_context, int toe);

/* The checks of a request's first call (headers in): marks the connection's
 * headers as arrived, takes a rate token, applies the CSRF rule and
 * answers preflights. Returns 0 to go on, else the HTTP status to refuse
 * with, and sets *type and *message (static text) for the error body;
 * rq->preflight is set for a preflight (answer 204, no body). */
int gw_edge_request(gw_edge *e, struct MHD_Connection *conn, const char *method, gw_edge_req *rq,
                    const char **type, const char **message);
/* Adds the answer's edge headers (CORS, Retry-After). */
void gw_edge_headers(const gw_edge_req *rq, struct MHD_Response *resp);

/* Body bytes: reserve before growing a request's buffer to cap bytes in
 * total; 0, or -1 when the gateway-wide bound is hit. */
int gw_edge_body_grow(gw_edge *e, gw_edge_req *rq, size_t cap);
/* At completion: gives back what the request held. */
void gw_edge_done(gw_edge_req *rq);

#endif /* NRPC_GW_EDGE_H */
