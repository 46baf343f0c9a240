/*
 * bridge.h: the HTTP -> NATS bridge.
 *
 *   route.c  path -> subject, timeout parsing (no I/O: unit-tested and fuzzed)
 *   http.c   the libmicrohttpd access handler and the per-request state
 */
#ifndef NRPC_GW_BRIDGE_H
#define NRPC_GW_BRIDGE_H

#include "gateway.h"

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

/* ---------------------------------------------------------------------------
 * idempotency.c
 */
struct MHD_Connection;
/* The request's Idempotency-Key header into out: 1 when there is one (out
 * holds the key as it goes to NATS, quotes removed), 0 when there is none
 * (out is ""), -1 when it is malformed or given more than once (err says
 * why, for a 400). */
int gw_idempotency_key(struct MHD_Connection *conn, char out[NRPC_IDEMPOTENCY_KEY_MAX + 1],
                       char *err, size_t errlen);

/* ---------------------------------------------------------------------------
 * early_reply.c: an answer decided while the request's body is still
 * coming, which libmicrohttpd 0.9.75 cannot queue before the body ends:
 * written on the socket, then the access handler returns MHD_NO (MHD closes
 * the connection without reading the rest).
 */
struct MHD_Response;
/* The head of an answer with status, resp's headers, Date (now),
 * Content-Length: body_len and Connection: close, into out: its length, or
 * -1 when it does not fit in cap bytes. */
long gw_early_head(unsigned status, struct MHD_Response *resp, size_t body_len, time_t now,
                   char *out, size_t cap);
/* Writes that head and body (len bytes, borrowed) on conn's socket without
 * waiting: 0 when all of it went out, -1 otherwise. */
int gw_early_reply(struct MHD_Connection *conn, unsigned status, struct MHD_Response *resp,
                   const char *body, size_t len);

/* ---------------------------------------------------------------------------
 * http.c
 */
/* Starts the loop's MHD daemon in external-event mode on listen_fd (taken,
 * even on failure; ipv6 when it is an AF_INET6 socket), driven by l's loop
 * from now on. *out is new: gw_http_close, then gw_http_free. */
nrpc_status gw_http_start(gw_http **out, gw_loop *l, int listen_fd, int ipv6);
/* MHD has work that no event of its own announces (a socket handed back
 * after an upgrade): it runs before the loop polls again. h is a gw_http *. */
void gw_http_due(void *h);
/* Stops accepting connections; requests already received go on, and every
 * response from now on closes its connection. */
void gw_http_quiesce(gw_http *h);
/* Stops driving MHD: closes the loop's handles of it. NULL-safe. */
void gw_http_close(gw_http *h);
/* After the loop has ended: stops the daemon and frees h. Every suspended
 * request must have been resumed (answered) and every upgraded socket
 * handed back. NULL-safe. */
void gw_http_free(gw_http *h);

#endif /* NRPC_GW_BRIDGE_H */
