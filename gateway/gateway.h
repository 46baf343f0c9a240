/*
 * gateway.h: what the three parts of natsrpc-gateway share.
 *
 * natsrpc-gateway turns HTTP and WebSocket traffic into NATS requests. Its
 * folders are its parts:
 *
 *   main.c     settings from the environment, --help, signals, start and drain
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
 */
#ifndef NRPC_GATEWAY_H
#define NRPC_GATEWAY_H

#include <natsrpc.h>

#include <stddef.h>
#include <stdint.h>

/* Hard cap of a request's timeout, whatever the caller asks for. */
#define GW_MAX_TIMEOUT_MS 300000

/* The settings of main.c's table, read once at start. */
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


#endif /* NRPC_GATEWAY_H */
