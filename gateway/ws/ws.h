/*
 * ws.h: private declarations of the gateway's WebSocket and WAMP side.
 *
 *   ws_frame.c    RFC 6455 frames: parser, writer, UTF-8 check, handshake
 *                 values (no I/O: unit-tested and fuzzed)
 *   wamp.c        WAMP v2 messages: decode, encode (no I/O: unit-tested and
 *                 fuzzed)
 *   ws.c          the upgraded sockets of one gateway loop
 *   wamp_router.c sessions, topics and calls: WAMP onto NATS
 *   wamp_confirm.c when nats-server has the router's subscriptions (the
 *                 marker round trip that SUBSCRIBED waits for)
 *
 * Threads. Each gateway loop (gateway.h) has its own gw_ws: its sockets,
 * sessions and topics, on the loop's NATS connection. Everything happens on
 * that loop's thread: MHD hands over the upgraded socket there, and NATS
 * messages and replies arrive there.
 */
#ifndef NRPC_GW_WS_H
#define NRPC_GW_WS_H

#include "gateway.h"

#include <jansson.h>
#include <uv.h>


#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * ws.c (with ws_frame.c, wamp.c, wamp_router.c): GET /websocket, WAMP v2
 * over WebSocket, on one gateway loop. Every function runs on that loop.
 */
typedef struct gw_ws gw_ws;
struct MHD_Connection;

/* Sets up the WebSocket side of a loop on uv; cfg is copied, client
 * borrowed (must outlive the sockets' use of it, see gw_ws_quiesce).
 * handed_back(arg) runs each time a socket goes back to MHD to be closed:
 * MHD closes it in its next run. *out is new: gw_ws_stop. */
nrpc_status gw_ws_start(gw_ws **out, uv_loop_t *uv, const gw_config *cfg, nrpc_client *client,
                        void (*handed_back)(void *arg), void *arg);
/* Closes every socket (1001, going away) without a WAMP GOODBYE, drops the
 * NATS subscriptions and stops using the client; later upgrades are
 * refused. No GOODBYE: a router's GOODBYE tells a WAMP client the session
 * ended for good, and autobahn then turns its auto-reconnect off, while a
 * closed socket alone makes it reconnect (to another gateway, or to this
 * one restarted). Idempotent; NULL-safe. */
void gw_ws_quiesce(gw_ws *ws);
/* The gateway loop ws belongs to (for GATEWAY_AUTH). NULL-safe. */
void gw_ws_set_loop(gw_ws *ws, gw_loop *gl);
/* Closes what is left and the handles; ws is freed once the loop has run
 * their close callbacks. Call before MHD_stop_daemon (every upgraded
 * socket goes back to MHD), and after the client is gone (replies to calls
 * are answered while ws lives). NULL-safe. */
void gw_ws_stop(gw_ws *ws);
/* WebSockets of this loop still open. */
int gw_ws_open_sockets(gw_ws *ws);
/* Answers GET /websocket from the loop's MHD daemon: 101 and the socket
 * stays on the loop, or an error (400, 426, 503). Sets *status; returns an
 * enum MHD_Result. */
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
    long long nats_dropped;   /* NATS messages dropped (none since events go straight to sockets) */
    long long calls;          /* CALLs forwarded to NATS */
    long long publishes;      /* PUBLISHes forwarded to NATS */
} gw_ws_stats;

/* Reads the counters (over every loop); callable from any thread. */
void gw_ws_stats_read(gw_ws_stats *out);

/* 1 if a WebSocket handshake with this Origin header (NULL: none, a
 * program rather than a browser) may go on: no Origin, the same host as the
 * request's Host header, "*" in allowed, or an exact origin listed in
 * allowed (comma-separated, e.g. "https://app.example.com"). */
int gw_origin_allowed(const char *origin, const char *host, const char *allowed);
/* 1 if the browser's cookies may count for this handshake: no Origin, the
 * gateway's own, or listed in allowed by name ("*" does not name one, as
 * CORS allows no credentials for "*"). */
int gw_origin_known(const char *origin, const char *host, const char *allowed);


/* ---------------------------------------------------------------------------
 * ws_frame.c
 */
enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close codes we send (RFC 6455 §7.4.1). */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* local meaning only: a close frame without a code */
    WS_CLOSE_BAD_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

/* Incremental UTF-8 validation: a sequence may be split across frames. */
typedef struct {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* allowed range of the next continuation byte */
} ws_utf8;

/* Feeds n bytes; returns 0 while the text can still be valid, -1 as soon as
 * it cannot (overlongs, surrogates, > U+10FFFF, stray continuation bytes). */
int ws_utf8_feed(ws_utf8 *u, const uint8_t *p, size_t n);
/* 1 if the text fed so far ends on a character boundary. */
int ws_utf8_complete(const ws_utf8 *u);
/* One-shot check of a whole text. */
int ws_utf8_valid(const uint8_t *p, size_t n);

/* What ws_reader_next found. */
typedef enum {
    WS_EV_NEED_MORE, /* no complete frame in the input; nothing consumed */
    WS_EV_CONTINUE,  /* a frame was consumed (a fragment); call again */
    WS_EV_MESSAGE,   /* a whole text or binary message */
    WS_EV_PING,
    WS_EV_PONG,
    WS_EV_CLOSE, /* the peer's close; code is WS_CLOSE_NO_STATUS when absent */
    WS_EV_ERROR, /* fail the connection with code (and reason) */
} ws_event_kind;

typedef struct {
    ws_event_kind kind;
    int opcode;          /* WS_EV_MESSAGE: WS_OP_TEXT or WS_OP_BINARY */
    const uint8_t *data; /* payload (message, ping/pong data, close reason) */
    size_t len;
    uint16_t code;      /* WS_EV_CLOSE, WS_EV_ERROR */
    const char *reason; /* WS_EV_ERROR: static text */
} ws_event;

/* The reading side of one connection: frame parsing and message reassembly.
 * Zero it, set max_message, and ws_reader_free it at the end. */
typedef struct {
    size_t max_message; /* bytes of one message, over all its fragments */
    int require_mask;   /* 1 on a server: unmasked frames fail with 1002 */
    int in_message;     /* a fragmented message is open */
    int msg_opcode;
    ws_utf8 utf8;
    uint8_t *msg; /* reassembly buffer of a fragmented message */
    size_t msg_len, msg_cap;
    int deliver_reset; /* the last WS_EV_MESSAGE came from msg: reset on next call */
} ws_reader;

/* Parses at most one frame from in (len bytes; unmasks it in place). On
 * WS_EV_NEED_MORE *used is 0; otherwise *used bytes were consumed. ev->data
 * points into in or into the reader, valid until the next call. A frame is
 * returned only when it is complete, so a caller must be able to hold
 * ws_reader_max_frame() bytes. */
ws_event_kind ws_reader_next(ws_reader *r, uint8_t *in, size_t len, size_t *used, ws_event *ev);
/* The largest frame ws_reader_next can ask for (header included). */
size_t ws_reader_max_frame(const ws_reader *r);
void ws_reader_free(ws_reader *r);

/* Writes a server frame header (never masked) for a payload of len bytes
 * into out (at least 10 bytes); returns its length. */
size_t ws_frame_header(uint8_t *out, int fin, int opcode, uint64_t len);
/* 1 if code may be sent or received in a close frame (RFC 6455 §7.4). */
int ws_close_code_valid(unsigned code);

/* Handshake values. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Sec-WebSocket-Accept for key: 28 characters and a NUL into out. Returns
 * -1 when key is not 24 characters of base64 encoding 16 bytes. */
int ws_accept_key(const char *key, char out[29]);
/* 1 if the comma-separated header value has token (case-insensitive). */
int ws_header_has_token(const char *value, const char *token);

/* ---------------------------------------------------------------------------
 * wamp.c
 */
enum {
    WAMP_HELLO = 1,
    WAMP_WELCOME = 2,
    WAMP_ABORT = 3,
    WAMP_CHALLENGE = 4,
    WAMP_AUTHENTICATE = 5,
    WAMP_GOODBYE = 6,
    WAMP_ERROR = 8,
    WAMP_PUBLISH = 16,
    WAMP_PUBLISHED = 17,
    WAMP_SUBSCRIBE = 32,
    WAMP_SUBSCRIBED = 33,
    WAMP_UNSUBSCRIBE = 34,
    WAMP_UNSUBSCRIBED = 35,
    WAMP_EVENT = 36,
    WAMP_CALL = 48,
    WAMP_CANCEL = 49,
    WAMP_RESULT = 50,
    WAMP_REGISTER = 64,
    WAMP_REGISTERED = 65,
    WAMP_UNREGISTER = 66,
    WAMP_UNREGISTERED = 67,
    WAMP_INVOCATION = 68,
    WAMP_INTERRUPT = 69,
    WAMP_YIELD = 70,
};

/* IDs are integers in [1, 2^53]. */
#define WAMP_MAX_ID 9007199254740992LL

/* One decoded message. Every pointer is borrowed from root. */
typedef struct {
    int type;
    int req_type;     /* ERROR: the type of the request it answers */
    json_int_t id[2]; /* the message's ids in order (request, subscription...) */
    json_t *dict;     /* Details or Options */
    const char *uri;  /* realm, reason, topic, procedure or error */
    json_t *args;     /* list or NULL */
    json_t *kwargs;   /* object or NULL */
    json_t *root;     /* owns the above: wamp_msg_free */
} wamp_msg;

/* Decodes one JSON text. Returns 0, or -1 with a message in err: not JSON,
 * not an array, unknown type, wrong element count or types, ids out of
 * range. On success free m with wamp_msg_free. */
int wamp_decode(const char *text, size_t len, wamp_msg *m, char *err, size_t errlen);
void wamp_msg_free(wamp_msg *m);
/* Name of a message type ("HELLO"...), or NULL. */
const char *wamp_type_name(int type);

/* Encoders: each returns the JSON text, new (free()), or NULL when out of
 * memory. args/kwargs are stolen (NULL: none); an empty kwargs is left out,
 * and empty args too when nothing follows them. */
char *wamp_encode_welcome(json_int_t session, const char *agent);
/* WELCOME with authid, authrole and authmethod in its Details (auth on). */
char *wamp_encode_welcome_auth(json_int_t session, const char *agent, const char *authid,
                               const char *authrole, const char *authmethod);
/* CHALLENGE [4, method, {}]. */
char *wamp_encode_challenge(const char *method);
char *wamp_encode_abort(const char *reason, const char *message);
char *wamp_encode_goodbye(const char *reason);
char *wamp_encode_error(int req_type, json_int_t request, const char *uri, json_t *args,
                        json_t *kwargs);
char *wamp_encode_subscribed(json_int_t request, json_int_t subscription);
char *wamp_encode_unsubscribed(json_int_t request);
char *wamp_encode_published(json_int_t request, json_int_t publication);
/* EVENT: Details {"topic": topic}, or {} when topic is NULL. */
char *wamp_encode_event(json_int_t subscription, json_int_t publication, const char *topic,
                        json_t *args, json_t *kwargs);
char *wamp_encode_result(json_int_t request, json_t *args, json_t *kwargs);

/* The WAMP error URI for a natsrpc error code and type (type may be NULL). */
const char *wamp_error_uri(int code, const char *type);

/* The sequence a subscription marker carries (wamp_confirm.c): len bytes
 * of decimal digits, no sign, no leading zero, in [1, INT64_MAX]; 0 for
 * anything else (the marker's subject is private, but anyone on NATS may
 * publish to it). */
uint64_t wamp_marker_parse(const char *data, size_t len);

/* ---------------------------------------------------------------------------
 * ws.c: the loop, seen from the router. All on the loop thread.
 */
typedef struct ws_conn ws_conn;
typedef struct gw_ws ws_loop; /* gateway.h's gw_ws */

/* A complete frame shared by every socket it is queued on. */
typedef struct {
    int refs;
    size_t len;
    uint8_t data[];
} ws_buf;

/* A text frame holding text (len bytes): new, one reference. NULL when out
 * of memory. */
ws_buf *ws_buf_text(const char *text, size_t len);
void ws_buf_unref(ws_buf *b);

/* Queues a frame (takes a reference of its own). A socket whose outgoing
 * queue would pass GATEWAY_WS_MAX_QUEUE is dropped instead (counted): the
 * call returns -1, and the connection is reaped at the end of the current
 * loop callback. Returns -1 too on a connection already going away. */
int ws_conn_send(ws_conn *c, ws_buf *b);
/* Encodes text as a frame and queues it. Frees text. */
int ws_conn_send_text(ws_conn *c, char *text);
/* Sends a close frame and ends the connection once it is written. */
void ws_conn_close(ws_conn *c, uint16_t code, const char *reason);
/* The session state the router keeps with the connection. */
void *ws_conn_session(ws_conn *c);
void ws_conn_set_session(ws_conn *c, void *session);
/* Keeps c's memory after it closed until every ws_conn_unref: for replies
 * that come back later. ws_conn_alive tells whether it is still open. */
void ws_conn_ref(ws_conn *c);
void ws_conn_unref(ws_conn *c);
int ws_conn_alive(ws_conn *c);

/* Frames were queued outside a socket's own callback (by a NATS message or
 * reply): flush them and reap the dead before the loop polls again. */
void ws_loop_settle_later(ws_loop *l);
/* The router of the loop. */
struct wamp_router *ws_loop_router(ws_loop *l);

/* Process-wide counters (gateway.h's gw_ws_stats), updated by ws.c and the
 * router. */
void ws_stat_add(int which, long long delta);
enum {
    WS_STAT_SOCKETS_OPEN,
    WS_STAT_SOCKETS_TOTAL,
    WS_STAT_SESSIONS,
    WS_STAT_TOPICS,
    WS_STAT_SUBSCRIPTIONS,
    WS_STAT_DROPPED_SLOW,
    WS_STAT_DROPPED_DEAD,
    WS_STAT_MESSAGES_IN,
    WS_STAT_EVENTS_OUT,
    WS_STAT_NATS_DROPPED,
    WS_STAT_CALLS,
    WS_STAT_PUBLISHES,
    WS_STAT_COUNT
};

/* ---------------------------------------------------------------------------
 * wamp_router.c: called by ws.c on the loop thread.
 */
typedef struct wamp_router wamp_router;

wamp_router *wamp_router_create(ws_loop *l, const gw_config *cfg, nrpc_client *client);
/* The gateway loop the router serves: with auth on, sessions are identified
 * and calls pass its gate (auth/gate.h). */
void wamp_router_set_loop(wamp_router *r, gw_loop *gl);
/* The handshake's credentials of c: its Authorization header, or "Bearer
 * <cookie natsrpc_token>"; NULL when none. Borrowed from c. */
const char *ws_conn_authorization(ws_conn *c);
/* A message (text or binary) arrived on c. */
void wamp_router_on_message(wamp_router *r, ws_conn *c, int opcode, const uint8_t *data,
                            size_t len);
/* 1 once a session has its WELCOME; 0 while it is authenticating (a
 * socket stuck there is closed like one that never said HELLO). */
int wamp_session_established(const void *session);
/* c is going away: drop its session and subscriptions. */
void wamp_router_on_close(wamp_router *r, ws_conn *c);
/* Drops every NATS subscription; the client is not used afterwards. */
void wamp_router_detach(wamp_router *r);
void wamp_router_destroy(wamp_router *r);
/* ws.c's prepare handle, before every poll: sends what waits for the end
 * of a loop turn (the marker of wamp_confirm_prepare). */
void wamp_router_prepare(wamp_router *r);
/* ws.c's timer (at most a second apart): retries and gives up on
 * subscriptions the server has not confirmed. */
void wamp_router_tick(wamp_router *r, int64_t now_ms);

/* ---------------------------------------------------------------------------
 * wamp_confirm.c: a marker round trip through nats-server, asynchronous,
 * on the loop (see the file's comment). All on the loop thread.
 */
typedef struct wamp_confirm wamp_confirm;

/* New (wamp_confirm_free); client borrowed. on_confirmed(arg, upto) runs
 * on the loop each time the server is known to have read everything the
 * client sent before ticket upto was handed out (every ticket <= upto).
 * NULL when out of memory. */
wamp_confirm *wamp_confirm_create(nrpc_client *client,
                                  void (*on_confirmed)(void *arg, uint64_t upto), void *arg);
/* A ticket for what the client has sent so far (a SUB just made): 1 or
 * more, or 0 when it cannot be confirmed (detached, no subscription). */
uint64_t wamp_confirm_ticket(wamp_confirm *cf);
/* Publishes the marker of the tickets handed out since the last one. */
void wamp_confirm_prepare(wamp_confirm *cf);
/* Publishes again a marker that has not come back in time (or could not
 * go out while NATS was down). */
void wamp_confirm_tick(wamp_confirm *cf, int64_t now_ms);
/* Drops the marker subscription; no NATS use afterwards. NULL-safe. */
void wamp_confirm_detach(wamp_confirm *cf);
void wamp_confirm_free(wamp_confirm *cf);

#endif /* NRPC_GW_WS_H */
