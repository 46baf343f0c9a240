/*
 * gateway.h: private declarations of natsrpc-gateway, the HTTP front end
 * that turns `POST /<service>.<method>` into a NATS request.
 *
 *   main.c   settings from the environment, --help, signals, start and drain
 *   http.c   the libmicrohttpd access handler and the per-request state
 *   route.c  path -> subject, timeout parsing (no I/O: unit-tested and fuzzed)
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

#endif /* NRPC_GATEWAY_H */
