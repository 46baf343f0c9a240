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
 * http.c
 */
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

#endif /* NRPC_GW_BRIDGE_H */
