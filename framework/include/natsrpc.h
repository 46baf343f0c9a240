/*
 * natsrpc.h: the one public header of the natsrpc framework.
 *
 * A natsrpc service is a table of rpcs, each with declared parameters. The
 * runtime subscribes every rpc on the NATS subject "<service>.<method>" in a
 * queue group, binds the request body [args, kwargs] to the parameters the way
 * Python binds a call, runs the handler and replies [result_args,
 * result_kwargs], or an error in one shape:
 *
 *   headers  Nats-Service-Error-Code: 400
 *            Nats-Service-Error: <message>
 *   body     {"error": {"code": 400, "type": "invalid_argument", "message": "..."}}
 *
 * Threads. Every handler, timer callback and completion of a service runs on
 * one thread, the service's loop thread, so handlers never need locks. A
 * handler must not block: to answer later it defers the reply (a timer, a
 * database result, another call) and returns.
 *
 * Ownership words used below:
 *   borrowed  valid until the call is answered; do not free.
 *   new       the caller owns the result and frees it.
 *   steals    the function takes the reference, even when it fails.
 *
 * JSON values are jansson's json_t.
 *
 * A CALL'S LIFETIME. A call (nrpc_call) is reference-counted, in the style
 * of nats.c's retain/release. The runtime holds one reference from the
 * moment the request arrives until the call is answered; every piece of
 * pending work holds one more: a timer (nrpc_call_after), an outgoing call
 * (nrpc_call_request), a database query (natsrpc_pg), the drain. Extensions
 * do the same with nrpc_call_hold()/nrpc_call_release(). The memory of a
 * call is freed when the last reference is released, never earlier, so a
 * callback always receives a valid call. A call is answered exactly once:
 * answering is idempotent, and a second answer (nrpc_reply, nrpc_fail...)
 * returns NRPC_ERR_STATE and sends nothing. What a call lends out (its
 * arguments, subject, trace id) stays readable while a reference is held.
 *
 * THE CALLBACK CONTRACT, for every asynchronous function of natsrpc and of
 * its extensions (nrpc_call_after, nrpc_call_request, nrpc_pg_query,
 * nrpc_client_request, nrpc_client_gather):
 *   - a function that returns NRPC_OK calls its callback exactly once: with
 *     the result, with an error code, or with NRPC_CODE_CANCELED when the
 *     work cannot complete (the call was answered meanwhile, or the service
 *     or client is stopping). This is libuv's UV_ECANCELED rule: a closure
 *     handed to an accepted request always comes back, so it can be freed
 *     there.
 *   - a function that returns an error calls nothing, answers nothing and
 *     keeps no reference: the caller still owns its closure and its call.
 * Service callbacks run on the service's loop thread; client callbacks on a
 * client thread, or on the client's loop in loop mode (see there).
 */
#ifndef NATSRPC_H
#define NATSRPC_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NRPC_VERSION "0.1.0"

/* ---------------------------------------------------------------------------
 * Status codes returned by library calls. Values never change meaning.
 */
typedef enum {
    NRPC_OK = 0,
    NRPC_ERR_INVALID_ARG = 1, /**< a caller passed a bad argument */
    NRPC_ERR_NOMEM = 2,       /**< out of memory */
    NRPC_ERR_NATS = 3,        /**< the NATS library failed; see the log */
    NRPC_ERR_STATE = 4,       /**< not allowed now (already answered, draining...) */
    NRPC_ERR_SYSTEM = 5,      /**< an OS call failed (errno is logged) */
    /** the NATS server answered but refused us (credentials, TLS): trying
     * again with the same settings cannot help; see the log */
    NRPC_ERR_REFUSED = 6,
} nrpc_status;

/** Static text for a status; never NULL. */
const char *nrpc_status_text(nrpc_status s);

/* ---------------------------------------------------------------------------
 * Wire error codes (the Nats-Service-Error-Code header and error.code) and
 * their types (error.type).
 */
#define NRPC_CODE_BAD_REQUEST 400 /* "invalid_argument" */
#define NRPC_CODE_UNAUTHENTICATED 401 /* "unauthenticated" (gateway: no or bad credentials) */
#define NRPC_CODE_FORBIDDEN 403       /* "permission_denied" (gateway: a scope is missing) */
#define NRPC_CODE_NOT_FOUND 404   /* "not_found" */
#define NRPC_CODE_TOO_LARGE 413   /* "too_large" (gateway) */
#define NRPC_CODE_INTERNAL 500    /* "internal" */
#define NRPC_CODE_UNAVAILABLE 503 /* "unavailable", or "overloaded" */
#define NRPC_CODE_TIMEOUT 504     /* "timeout" */
/** Handed to callbacks (never sent on the wire by the runtime) when work was
 * canceled: its call was answered meanwhile, or the service is stopping.
 * The number is nginx's "client closed request". */
#define NRPC_CODE_CANCELED 499 /* "canceled" */

/** Longest subject, in bytes, that natsrpc builds, forwards or subscribes
 * to. nats-server refuses protocol lines past 4 KiB by closing the
 * connection, so longer subjects are refused before they reach NATS: 400,
 * wamp.error.invalid_uri, or NRPC_ERR_INVALID_ARG. */
#define NRPC_MAX_SUBJECT 256

/** Events live in their own subject space: a topic "a.b" (nrpc_service_publish,
 * a WAMP topic) is the NATS subject "events.a.b", where no rpc listens, so
 * a publish can never run a handler. */
#define NRPC_EVENT_PREFIX "events."

/** NATS credentials and TLS, read from the environment by every natsrpc
 * process (services, clients, the gateway, the CLI) for every connection.
 * A bad combination or an unreadable file fails the process at start with
 * the variable's name, and so does a server that refuses the credentials;
 * secrets are never logged. The lines below are the --help text. */
#define NRPC_NATS_ENV_HELP                                                                   \
    "  NATS_USER, NATS_PASSWORD  user and password (both, or neither)\n"                       \
    "  NATS_TOKEN           a token\n"                                                          \
    "  NATS_NKEY_SEED       file holding a user nkey seed (SU...); nats.c signs with it\n"     \
    "  NATS_CREDS           a .creds file (user JWT and seed)\n"                               \
    "                       (at most one of the four ways above)\n"                            \
    "  NATS_CA              CA file for TLS (tls:// URLs, or any URL with it set)\n"            \
    "  NATS_CERT, NATS_KEY  client certificate and key for TLS (both, or neither)\n"           \
    "  NATS_TLS_HOSTNAME    the name the server's certificate must carry\n"                  \
    "  NATS_INBOX_PREFIX    subject prefix of this process's reply inboxes, _INBOX or\n"       \
    "                       _INBOX.<name> (default _INBOX), so that nats-server can let\n"     \
    "                       each user read only its own replies\n"

/** Reply inboxes. Every inbox a natsrpc process makes (its requests, a
 * service's outgoing calls, JetStream's acknowledgments, the gateway's WAMP
 * markers, the CLI) is "<prefix>.<NRPC_INBOX_RANDOM hex digits>", the prefix
 * being NATS_INBOX_PREFIX, else "_INBOX". A prefix is "_INBOX" or
 * "_INBOX.<tokens>" (the gateway never forwards to an _INBOX subject), of
 * dot-separated tokens of letters, digits, '_' and '-', at most
 * NRPC_INBOX_PREFIX_MAX bytes; any other value stops the process at its
 * first NATS connection with a message naming the variable. */
#define NRPC_INBOX_PREFIX_MAX 64
#define NRPC_INBOX_RANDOM 32
/** Room for an inbox with its NUL. */
#define NRPC_INBOX_SIZE (NRPC_INBOX_PREFIX_MAX + 1 + NRPC_INBOX_RANDOM + 1)
/** 0 if prefix may be a NATS_INBOX_PREFIX (NULL and "" mean unset: yes),
 * else -1 with why (may be NULL) saying what is wrong, naming the variable. */
int nrpc_inbox_prefix_check(const char *prefix, char *why, size_t why_len);
/** This process's inbox prefix: NATS_INBOX_PREFIX, or "_INBOX" when unset;
 * NULL when it is set but not valid. Borrowed (the environment's). */
const char *nrpc_inbox_prefix(void);
/** Writes a new inbox "<prefix>.<random hex>" into buf (len >=
 * NRPC_INBOX_SIZE always suffices); the digits come from the kernel's
 * generator, so no inbox tells another. NRPC_ERR_INVALID_ARG when it does
 * not fit or NATS_INBOX_PREFIX is not valid, NRPC_ERR_SYSTEM when getrandom
 * fails. */
nrpc_status nrpc_inbox_new(char *buf, size_t len);

/** The default error.type of a code ("internal" for unknown codes). */
const char *nrpc_code_type(int code);

/** Header names on the wire. */
#define NRPC_HDR_ERROR_CODE "Nats-Service-Error-Code"
#define NRPC_HDR_ERROR "Nats-Service-Error"
/** Milliseconds the caller will still wait, set by callers (the gateway sets
 * it from its timeout). The runtime drops a call whose time ran out before it
 * started. */
#define NRPC_HDR_TIMEOUT "Nrpc-Timeout-Ms"

/** Progress heartbeats: how a caller tells a slow call from a lost replica,
 * as JetStream's work-in-progress acknowledgments do.
 *
 *   - The caller asks: it sends the header Nrpc-Heartbeat-Ms: N with the
 *     request, N in [NRPC_HEARTBEAT_MIN_MS, NRPC_HEARTBEAT_MAX_MS].
 *   - The runtime sends: while the call is still unanswered N ms after its
 *     handler started, and every N ms after that, it publishes on the
 *     request's reply subject a heartbeat: a message with the header
 *     Nrpc-Heartbeat: <n> (1, 2, ...) and an empty body. The reply itself
 *     comes last, as usual, and no heartbeat follows it. A call answered
 *     within N ms sends none. Without the header, or with a value that is
 *     not a whole number in range, the runtime never sends one, so a
 *     program that does not know heartbeats never sees one (events, whose
 *     reply subject is JetStream's, never get them either).
 *   - The caller watches: a call counts as lost when nothing (heartbeat or
 *     reply) came
 *       - within 1.5 N after it was sent, when the subject is known to send
 *         heartbeats: the first one is due N after the handler started,
 *         and half an interval covers the trips and the service's queue.
 *         Known means expected (nrpc_client_expect_heartbeats: the gateway
 *         tells its clients every rpc whose services carry the INFO marker
 *         NRPC_INFO_HEARTBEATS, so a fast rpc's lost reply shows in 1.5 s)
 *         or learnt (a heartbeat came for an earlier call to it);
 *       - within NRPC_HEARTBEAT_MISSED intervals and half of one more
 *         (2.5 N) after its last heartbeat, for every call that got one (a
 *         caller without that memory, such as the natsrpc CLI, watches
 *         from the first heartbeat).
 *     The caller then answers 503 "unavailable" (the replica was lost: the
 *     call may have run) and stops waiting; a reply that comes later is
 *     dropped. A responder that never sends heartbeats (not natsrpc) is
 *     waited for until the timeout, as before.
 *   - A natsrpc service says it honours Nrpc-Heartbeat-Ms in its $SRV.INFO
 *     metadata: NRPC_INFO_HEARTBEATS: "true".
 *
 * natsrpc's callers (nrpc_client_request, nrpc_call_request, the natsrpc
 * CLI) ask with N = NRPC_HEARTBEAT_MS whenever their timeout is longer than
 * 2.5 N, and skip heartbeats when reading replies. */
#define NRPC_HDR_HEARTBEAT_MS "Nrpc-Heartbeat-Ms"
#define NRPC_HDR_HEARTBEAT "Nrpc-Heartbeat"
#define NRPC_HEARTBEAT_MS 1000
#define NRPC_HEARTBEAT_MIN_MS 100
#define NRPC_HEARTBEAT_MAX_MS 60000
#define NRPC_HEARTBEAT_MISSED 2
#define NRPC_INFO_HEARTBEATS "heartbeats"

/** W3C trace context and request id: the gateway sets them, services log
 * them with every line about the call and pass them on. */
#define NRPC_HDR_TRACEPARENT "traceparent"
#define NRPC_HDR_REQUEST_ID "X-Request-Id"

/** Idempotency-Key: a key the client chooses for one logical operation
 * and sends again with every retry of it, so that the operation happens
 * once (the IETF httpapi draft's header, as Stripe and others use it). The
 * gateway passes the HTTP header on as this NATS header (400 for a bad
 * one), and an rpc that changes state may use it as the id under which it
 * keeps its first result (thing_service.create_thing uses it as its
 * request_id when the call gives none). On the wire it is 1 to
 * NRPC_IDEMPOTENCY_KEY_MAX characters of letters, digits and "-_.:+/=~"
 * (a UUID, a ULID, base64). */
#define NRPC_HDR_IDEMPOTENCY_KEY "Idempotency-Key"
#define NRPC_IDEMPOTENCY_KEY_MAX 128
/** 1 if s is a key as it travels on NATS (see above), else 0. */
int nrpc_idempotency_key_valid(const char *s);
/** Reads a key from len bytes of an HTTP header value: bare, or as a
 * quoted string ("..."), which is the same key. On success writes it,
 * NUL-terminated, into out and returns 0; -1 for an empty value, one over
 * NRPC_IDEMPOTENCY_KEY_MAX characters or another character. */
int nrpc_idempotency_key_parse(const char *in, size_t len, char out[NRPC_IDEMPOTENCY_KEY_MAX + 1]);

/** W3C trace context for one hop. */
#define NRPC_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define NRPC_REQUEST_ID_MAX 64  /* longer X-Request-Id values are replaced */
typedef struct {
    char traceparent[NRPC_TRACEPARENT_LEN + 1]; /**< to send on: caller's trace, new span */
    char trace_id[33];
    char request_id[NRPC_REQUEST_ID_MAX + 1];
} nrpc_trace;
/** 1 if s is "00-<32 hex>-<16 hex>-<2 hex>" (lower case, ids not all zero). */
int nrpc_traceparent_valid(const char *s);
/** 1 if s is 1..NRPC_REQUEST_ID_MAX printable ASCII characters, no spaces. */
int nrpc_request_id_valid(const char *s);
/** Fills t for one hop from the caller's headers (either may be NULL): the
 * caller's trace (or a new one) with a new span id, the caller's request id
 * (or the trace id). */
void nrpc_trace_begin(nrpc_trace *t, const char *traceparent, const char *request_id);

/** Builds the error body {"error": {"code", "type", "message"}}: new. type may
 * be NULL for the code's default type. */
json_t *nrpc_error_body(int code, const char *type, const char *message);

/* ---------------------------------------------------------------------------
 * Declaring rpcs.
 */
typedef enum {
    NRPC_ANY = 0, /**< any JSON value */
    NRPC_STRING,
    NRPC_NUMBER,  /**< integer or real */
    NRPC_INTEGER, /**< integer (a real with no fraction is accepted) */
    NRPC_BOOLEAN,
    NRPC_ARRAY,
    NRPC_OBJECT,
} nrpc_type;

/** JSON name of a type ("string", "number", ...). */
const char *nrpc_type_name(nrpc_type t);

/** One declared parameter. A parameter whose default_json is NULL is
 * required. A parameter whose default is null also accepts null. */
typedef struct {
    const char *name;
    nrpc_type type;
    const char *default_json; /**< JSON text of the default, or NULL */
    const char *description;  /**< one line, optional */
    /** JSON text of a value the rpc accepts, optional: published with the
     * parameters ($SRV.INFO), it is what the gateway's OpenAPI example (and
     * so /docs' "Try it out") sends. Without one the example uses the
     * default, else a placeholder of the type ("string", 0...). */
    const char *example_json;
} nrpc_param;

typedef struct nrpc_call nrpc_call;
typedef struct nrpc_service nrpc_service;

/** Log levels (see nrpc_log). */
typedef enum { NRPC_LOG_DEBUG, NRPC_LOG_INFO, NRPC_LOG_WARN, NRPC_LOG_ERROR } nrpc_log_level;

/** A handler. It answers with nrpc_reply()/nrpc_fail() before returning, or
 * starts work that answers later (nrpc_call_after(), nrpc_call_request(),
 * a query) and returns. A handler that returns without doing either is
 * answered with 500. */
typedef void (*nrpc_handler)(nrpc_call *call);

/** rpc flags */
#define NRPC_VARARGS 0x1 /**< extra positional args are kept (Python *args) */
#define NRPC_VARKW 0x2   /**< unknown keywords are kept (Python **kwargs) */

typedef struct {
    const char *name; /**< method name: letters, digits, '_' and '-' */
    nrpc_handler handler;
    const nrpc_param *params; /**< terminated by {NULL}; NULL for none */
    const char *description;  /**< one line */
    unsigned flags;           /**< NRPC_VARARGS | NRPC_VARKW */
    /** REST routes of the rpc, NULL-terminated, or NULL: see nrpc_route. The
     * gateway serves them next to POST /<service>.<method>. Checked at
     * start: a bad rule stops the service with a message. */
    const char *const *http;
    /** Who may call it through a gateway with auth on (see "Access"):
     * NRPC_PUBLIC, or the scopes a caller needs, space-separated ("things:write"),
     * or NULL / NRPC_AUTHENTICATED: any authenticated caller. Nothing is
     * public unless declared so. Published in $SRV.INFO ("access"). */
    const char *access;
} nrpc_rpc;

/* ---------------------------------------------------------------------------
 * Access. A gateway with auth on (GATEWAY_AUTH) lets a caller through to an
 * rpc when its access is NRPC_PUBLIC, or when the caller is authenticated
 * and holds every scope the access names. The checked caller, the
 * principal, travels to the service in the header NRPC_HDR_PRINCIPAL as
 * {"sub": "<subject>", "scopes": ["<scope>", ...]}; the gateway always
 * replaces (or removes) one that a client sent. Only the gateway should be
 * able to publish on rpc subjects (NATS permissions), since any NATS client
 * can set the header.
 */
#define NRPC_PUBLIC "public"
#define NRPC_AUTHENTICATED "authenticated"
#define NRPC_HDR_PRINCIPAL "Nrpc-Principal"
#define NRPC_MAX_ACCESS 1024 /* bytes of an access string or a principal's scopes */

/** 1 if access is NULL, NRPC_PUBLIC, NRPC_AUTHENTICATED or 1..32 scopes of
 * RFC 6749 scope characters (printable ASCII but space, '"' and '\\')
 * separated by single spaces, at most NRPC_MAX_ACCESS bytes; else 0. */
int nrpc_access_valid(const char *access);
/** 1 if the scopes have (n bytes of space-separated scopes; NULL for none)
 * include every scope that access needs: always for NRPC_PUBLIC and
 * NRPC_AUTHENTICATED (NULL). The caller checks authentication itself. */
int nrpc_access_allows(const char *access, const char *have, size_t n);

/* ---------------------------------------------------------------------------
 * REST routes. A rule is "METHOD /path [STATUS [LOCATION]]":
 *   "GET /things"                       query parameters bind by name
 *   "GET /things/{uuid}"                a path segment binds to parameter uuid
 *   "PUT /things/{uuid}"                a JSON object body binds by field name
 *   "POST /things 201 /things/{uuid}"   201, Location filled from the result
 *   "DELETE /things/{uuid} 204"         204, no body
 * METHOD is GET, POST, PUT, PATCH or DELETE; path segments are literal
 * tokens (letters, digits, '_', '-', '.') or {name} of a declared parameter.
 * A reply's body is the rpc's single result value (result_args[0]), or
 * {"items": result_args, ...result_kwargs} when it returns keywords or
 * another number of values (a page of a list: {"items": [...], "next"});
 * errors keep the usual error body with their code as the HTTP status.
 */
#define NRPC_MAX_ROUTE 200 /* bytes of a rule's path or location */
typedef struct {
    char method[8];
    char path[NRPC_MAX_ROUTE + 1];
    int status; /**< 200 unless the rule says otherwise */
    char location[NRPC_MAX_ROUTE + 1]; /**< "" when none */
} nrpc_route;

/** Parses rule into *out. Returns 0, or -1 with a message in err. */
int nrpc_route_parse(const char *rule, nrpc_route *out, char *err, size_t errlen);
/** 1 if the request's method and path (len bytes, still percent-encoded,
 * no query string) match route; then the {name} segments are set in params
 * (a JSON object: name -> percent-decoded string). 0 otherwise (params
 * untouched); a {name} segment never matches when it decodes to something
 * other than UTF-8 text without NUL or '/', or to "." or "..". */
int nrpc_route_match(const nrpc_route *route, const char *method, const char *path, size_t len,
                     json_t *params);
/** The Location of a reply: route's location with each {name} replaced by
 * that field of value (an object; strings and integers, percent-encoded).
 * Returns 0, or -1 when there is none or a field is missing. */
int nrpc_route_location(const nrpc_route *route, json_t *value, char *out, size_t outlen);

#define NRPC_PCT_PLUS 0x1     /**< '+' is a space (query strings) */
#define NRPC_PCT_NO_SLASH 0x2 /**< a decoded '/' is refused (path segments) */
/** Percent-decodes n bytes of s into a new string (free()). NULL when a '%'
 * is not followed by two hex digits, when it decodes to a NUL byte, or to a
 * '/' with NRPC_PCT_NO_SLASH. */
char *nrpc_percent_decode(const char *s, size_t n, unsigned flags);

/* ---------------------------------------------------------------------------
 * Declaring events.
 *
 * Next to its rpcs a service declares the events it emits and the events of
 * other services it handles, as Nameko's event_handler and Moleculer's emit
 * do. An event "e" of service "s" is the topic "s.e", so the NATS subject
 * NRPC_EVENT_PREFIX "s.e" (a WAMP client subscribes to topic "s.e"), and its
 * body is [args, kwargs] like a request's.
 *
 * Delivery is durable and at least once, on NATS JetStream (nats-server -js):
 *   - each emitting service has a stream NRPC_STREAM_PREFIX "<s>" over
 *     "events.<s>.>", created by the first service that needs it;
 *   - each handler is a durable consumer "<handling service>__<e>" on that
 *     stream with explicit acks, shared by the replicas of the handling
 *     service: each event is handled once per handling service;
 *   - the handler answers like an rpc handler: a reply acknowledges the
 *     event; an error sends it back for redelivery after nrpc_backoff_ms
 *     (NRPC_EVENT_BACKOFF_MS doubled up to 60 s); a 400 (the body does not
 *     bind to the handler's parameters) or the last of NRPC_EVENT_MAX_DELIVER
 *     tries (default 5) moves it to the dead-letter subject
 *     NRPC_DEADLETTER_PREFIX "<handling service>.<s>.<e>", kept in the
 *     stream NRPC_DEADLETTER_STREAM_PREFIX "<handling service>", with the
 *     headers Nrpc-Event-Id, Nrpc-Event-Subject, Nrpc-Deliveries and
 *     Nrpc-Error, and counts in $SRV.STATS;
 *   - the event id travels in Nats-Msg-Id, so a publish repeated within the
 *     stream's duplicate window (2 min) is stored once; handlers use
 *     nrpc_event_id() to be idempotent across redeliveries.
 * Handlers run on the loop thread and follow the callback contract of rpc
 * handlers: they may answer later (a query, a timer, another call).
 */

/** An event the service emits (nrpc_service_def.emits), or a topic it
 * publishes on (nrpc_service_def.topics). Its topic is "<service>.<name>".
 *
 * Topic access. The topics "<service>.*" belong to the service: through a
 * gateway with auth on (GATEWAY_AUTH), a WAMP session may subscribe to one
 * as `access` says, and publish on one only as `publish` says; a topic of a
 * service's that it does not declare needs an authenticated session to
 * subscribe, and nobody publishes on it but the service. Both values are
 * published in $SRV.INFO ("emits", "topics") and take the form of
 * nrpc_rpc.access. Topics in no service's space are the gateway's to rule
 * (its GATEWAY_AUTH file, "topics"). */
typedef struct {
    const char *name;        /**< letters, digits, '_' and '-' */
    const char *description; /**< one line */
    /** Who may subscribe through a gateway: NRPC_PUBLIC, scopes, or NULL /
     * NRPC_AUTHENTICATED: any authenticated session. */
    const char *access;
    /** Who may publish on it through a gateway, in the same form; NULL:
     * nobody but the service. An emitted event published by a client is
     * stored and handled like the service's own, so think twice. */
    const char *publish;
} nrpc_event;

/** An event of a service (possibly this one) that the service handles. The
 * handler receives a call bound to params like an rpc's; params NULL and
 * flags 0 accept any body (nrpc_call_varargs/nrpc_call_varkw). */
typedef struct {
    const char *service; /**< the emitting service */
    const char *event;   /**< the event's name */
    nrpc_handler handler;
    const nrpc_param *params; /**< terminated by {NULL}; NULL for none */
    const char *description;  /**< one line */
    unsigned flags;           /**< NRPC_VARARGS | NRPC_VARKW */
} nrpc_event_handler;

#define NRPC_STREAM_PREFIX "EVENTS_"
#define NRPC_DEADLETTER_PREFIX "deadletter."
#define NRPC_DEADLETTER_STREAM_PREFIX "DEADLETTER_"
/** The event id header (JetStream's de-duplication key). */
#define NRPC_HDR_MSG_ID "Nats-Msg-Id"

typedef struct {
    const char *name;        /**< service name: letters, digits, '_' and '-' */
    const char *version;     /**< SemVer, default "0.0.0" */
    const char *description; /**< one line */
    const nrpc_rpc *rpcs;    /**< terminated by {NULL} */
    /** Calls in flight past which new calls get 503 "overloaded". 0 takes
     * NRPC_MAX_IN_FLIGHT from the environment, else 10000. */
    int max_in_flight;
    /** Queue group of every rpc subscription; NULL for "q". */
    const char *queue_group;
    /** Called on the loop thread once connected, before the rpcs are
     * subscribed; a non-zero return stops start-up. Optional. */
    int (*on_start)(nrpc_service *svc);
    /** Called on the loop thread after the drain, before exit. Optional. */
    void (*on_stop)(nrpc_service *svc);
    /** Events this service emits (nrpc_service_emit), terminated by {NULL};
     * NULL for none. */
    const nrpc_event *emits;
    /** Events this service handles, terminated by {NULL}; NULL for none. */
    const nrpc_event_handler *handles;
    /** Topics this service publishes on with nrpc_service_publish (plain
     * NATS, not stored), terminated by {NULL}; NULL for none. Declared for
     * the gateway's topic access and the catalog (see nrpc_event). */
    const nrpc_event *topics;
} nrpc_service_def;

/* ---------------------------------------------------------------------------
 * Inside a handler: arguments.
 *
 * Values are bound and type-checked before the handler runs, so the typed
 * getters cannot fail for declared parameters. A name the rpc does not
 * declare is a programming error: builds without NDEBUG abort with a message
 * naming the rpc and the name; release builds log it once per call and
 * return JSON null, "" (never NULL), 0, 0 and 0.
 */
json_t *nrpc_arg(nrpc_call *call, const char *name); /**< borrowed */
/** Borrowed. NULL only when a declared parameter's value is null (a
 * parameter whose default is null). */
const char *nrpc_arg_string(nrpc_call *call, const char *name);
double nrpc_arg_number(nrpc_call *call, const char *name);
json_int_t nrpc_arg_int(nrpc_call *call, const char *name);
int nrpc_arg_bool(nrpc_call *call, const char *name);
/** Extra positional args (NRPC_VARARGS), else an empty array: borrowed,
 * do not modify. */
json_t *nrpc_call_varargs(nrpc_call *call);
/** Extra keywords (NRPC_VARKW), else an empty object: borrowed, do not
 * modify. */
json_t *nrpc_call_varkw(nrpc_call *call);

/** "<service>.<method>": borrowed. */
const char *nrpc_call_subject(nrpc_call *call);
/** The service the call came to: borrowed. */
nrpc_service *nrpc_call_service(nrpc_call *call);
/** Milliseconds left before the caller gives up; INT64_MAX when the caller
 * sent no deadline. Can be negative. */
int64_t nrpc_call_time_left_ms(nrpc_call *call);
/** The caller's trace id (32 hex digits, from traceparent), or NULL. */
const char *nrpc_call_trace_id(nrpc_call *call);
/** The caller's X-Request-Id, or NULL. Borrowed. */
const char *nrpc_call_request_id(nrpc_call *call);
/** The caller as the gateway checked it: {"sub": "<subject>", "scopes":
 * [...]} from the NRPC_HDR_PRINCIPAL header, or NULL for an anonymous call
 * (no header, or a malformed one). Borrowed: valid while a reference to
 * the call is held; do not modify. Parsed on first use. */
json_t *nrpc_call_principal(nrpc_call *call);
/** 1 if the call's principal holds scope, else 0 (anonymous: 0). */
int nrpc_call_has_scope(nrpc_call *call, const char *scope);
/** The caller's Idempotency-Key header (NRPC_HDR_IDEMPOTENCY_KEY), or NULL
 * when there is none or it is not valid (nrpc_idempotency_key_valid).
 * Borrowed. */
const char *nrpc_call_idempotency_key(nrpc_call *call);
/** Fills t for an outgoing hop of call (another rpc, an HTTP request): the
 * caller's trace with a new span id, or a new trace; the caller's request
 * id, or the trace id. */
void nrpc_call_trace_hop(nrpc_call *call, nrpc_trace *t);
/** Logs a line about this call: with its trace and request ids. */
void nrpc_call_log(nrpc_call *call, nrpc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** A pointer of the handler's, kept with the call. */
void nrpc_call_set_data(nrpc_call *call, void *data);
void *nrpc_call_data(nrpc_call *call);

/** Takes a reference on call: it stays allocated (answered or not) until the
 * matching nrpc_call_release. For extensions that keep a call while work is
 * pending (see "A call's lifetime" above). Loop thread only. Returns call. */
nrpc_call *nrpc_call_hold(nrpc_call *call);
/** Drops a reference taken with nrpc_call_hold; the last one frees the call.
 * An unanswered call is never freed by a release: the runtime holds its own
 * reference until the answer. NULL-safe. */
void nrpc_call_release(nrpc_call *call);
/** 1 once the call has been answered (by the handler, a deadline or the
 * drain), else 0. */
int nrpc_call_answered(nrpc_call *call);
/** Marks the call deferred and records the work that will answer it: for
 * extensions, with nrpc_call_hold. The handler may return unanswered. */
void nrpc_call_defer(nrpc_call *call);

/* ---------------------------------------------------------------------------
 * Inside a handler: answers. Each call is answered exactly once; a second
 * answer returns NRPC_ERR_STATE and sends nothing (and frees what it was
 * given). See "A call's lifetime" above for how long the call lives.
 */

/** Replies [args, kwargs]. Steals both; NULL means [] / {}. */
nrpc_status nrpc_reply(nrpc_call *call, json_t *args, json_t *kwargs);
/** Replies [[value], {}]. Steals value. */
nrpc_status nrpc_reply_value(nrpc_call *call, json_t *value);
/** Replies with an error; type NULL means the code's default type. */
nrpc_status nrpc_fail(nrpc_call *call, int code, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Receives the end of a timer: code 0 when ms have passed, or
 * NRPC_CODE_CANCELED when the call was answered first (by a deadline or the
 * drain) or the service is stopping. Runs exactly once, on the loop thread. */
typedef void (*nrpc_timer_cb)(nrpc_call *call, int code, void *arg);
/** Defers call and runs cb after ms milliseconds: the C spelling of `await
 * asyncio.sleep()`. Holds a reference on call, no thread. One timer per call
 * at a time: while one is pending this returns NRPC_ERR_STATE (a callback
 * may start the next). */
nrpc_status nrpc_call_after(nrpc_call *call, uint64_t ms, nrpc_timer_cb cb, void *arg);

/** Receives the answer of an outgoing call, exactly once, on the loop
 * thread: code 0 with args and kwargs (borrowed for the callback), or the
 * error code and its message: 404 no such rpc, 504 no reply in time, 503
 * NATS down or the service's connection lost while the call was in flight
 * (at once: see "Connection loss" below), the rpc's own errors, or NRPC_CODE_CANCELED when call was
 * answered before the reply came or the service is stopping. The callback
 * answers call or starts more work. */
typedef void (*nrpc_call_reply_cb)(nrpc_call *call, int code, json_t *args, json_t *kwargs,
                                   const char *error_message, void *arg);

/** Calls another rpc from a handler, on the service's connection, and
 * defers call until the answer comes. Steals args and kwargs (NULL: []/{}).
 * The request carries call's trace id (a child span), request id, and the
 * smaller of timeout_ms (<= 0: 60 s) and the time call has left. Holds a
 * reference on call until cb has run. NRPC_ERR_INVALID_ARG for a subject
 * that is not "<service>.<method>" within NRPC_MAX_SUBJECT. */
nrpc_status nrpc_call_request(nrpc_call *call, const char *subject, json_t *args, json_t *kwargs,
                              int64_t timeout_ms, nrpc_call_reply_cb cb, void *arg);

/* ---------------------------------------------------------------------------
 * Services.
 */

/** Publishes the event [args, kwargs] on topic "a.b", which is the NATS
 * subject NRPC_EVENT_PREFIX "a.b" (so never an rpc's). Steals args and
 * kwargs (NULL: []/{}). Loop thread. */
nrpc_status nrpc_service_publish(nrpc_service *svc, const char *topic, json_t *args,
                                 json_t *kwargs);
/** Receives the end of an emit, exactly once, on the loop thread: code 0
 * once the stream has stored the event (or had stored it already: a
 * duplicate id), 503 when JetStream cannot store it (NATS down, no
 * JetStream, no stream), 504 when no acknowledgment came within
 * NRPC_EMIT_TIMEOUT_MS (default 5000; the event may still have been
 * stored), NRPC_CODE_CANCELED when the service stops first. error says why
 * for codes other than 0. */
typedef void (*nrpc_emit_cb)(nrpc_service *svc, int code, const char *error, void *arg);

/** Emits this service's declared event `event` with body [args, kwargs]
 * (steals both; NULL: []/{}): a JetStream publish on "events.<service>.<
 * event>" with id (at most 64 printable characters; NULL: 32 random hex
 * digits) in Nats-Msg-Id. cb may be NULL (failures are then logged). Loop
 * thread. Returns NRPC_ERR_INVALID_ARG for an undeclared event or a bad id,
 * NRPC_ERR_STATE without NATS (nrpc_test_invoke) or with too many emits
 * waiting for their acknowledgment, and then calls nothing. */
nrpc_status nrpc_service_emit(nrpc_service *svc, const char *event, const char *id, json_t *args,
                              json_t *kwargs, nrpc_emit_cb cb, void *arg);
/** nrpc_service_emit with a body already encoded as [args, kwargs] text
 * (len bytes, copied): for relays that stored it (natsrpc_pg's outbox). */
nrpc_status nrpc_service_emit_text(nrpc_service *svc, const char *event, const char *id,
                                   const char *body, size_t len, nrpc_emit_cb cb, void *arg);

/** Inside an event handler: the event's id (its Nats-Msg-Id), borrowed;
 * NULL in an rpc handler or for an event published without one. The same
 * event redelivered has the same id. */
const char *nrpc_event_id(nrpc_call *call);
/** Inside an event handler: which delivery of the event this is, 1 the
 * first time; 0 in an rpc handler. */
int nrpc_event_attempt(nrpc_call *call);

/** The service's libuv loop (a uv_loop_t), which runs every handler and
 * callback: for extensions that watch sockets or timers of their own.
 * Borrowed. */
struct uv_loop_s *nrpc_service_loop(nrpc_service *svc);
/** The service's definition: borrowed (a copy owned by the service). */
const nrpc_service_def *nrpc_service_def_of(nrpc_service *svc);
/** A pointer of the application's, kept with the service. */
void nrpc_service_set_data(nrpc_service *svc, void *data);
void *nrpc_service_data(nrpc_service *svc);

/** Runs a service as a program: parses --help, reads NATS_URL (default
 * nats://127.0.0.1:4222, comma-separated list allowed) and the other
 * settings, connects (retrying forever), serves until SIGTERM or SIGINT,
 * drains and returns the process exit status (0 after a clean drain). */
int nrpc_service_main(const nrpc_service_def *def, int argc, char **argv);

/* ---------------------------------------------------------------------------
 * Testing a handler without NATS.
 *
 * Runs one call in-process on a private loop: decodes body as a request,
 * binds it, runs the handler and its deferred callbacks and timers until the
 * call is answered. On return *reply_body is the reply JSON text (new, free()
 * it) and *code is 0 for success or the error code.
 */
nrpc_status nrpc_test_invoke(const nrpc_service_def *def, const char *method, const char *body,
                             int *code, char **reply_body);

/* ---------------------------------------------------------------------------
 * The call convention, for gateways and clients.
 */

/** Decodes a request body: [args, kwargs], [args], [], empty (or only
 * whitespace), or a bare object (kwargs). On success *args and *kwargs are
 * new. On failure returns -1 and writes a message into err (errlen bytes). */
int nrpc_request_decode(const char *body, size_t len, json_t **args, json_t **kwargs, char *err,
                        size_t errlen);

/** Binds args/kwargs to params the way Python binds a call. On success
 * *bound is a new object name -> value (defaults filled in), *varargs a new
 * array and *varkw a new object (empty unless flags allow them). On failure
 * returns -1 and writes a message naming the parameter into err. *varargs
 * is NULL unless flags has NRPC_VARARGS, *varkw NULL unless NRPC_VARKW. */
int nrpc_bind(const nrpc_param *params, unsigned flags, json_t *args, json_t *kwargs,
              json_t **bound, json_t **varargs, json_t **varkw, char *err, size_t errlen);

/** Encodes [args, kwargs] as compact-spaced JSON text (new, free() it). Steals
 * both; NULL means []/{}. */
char *nrpc_reply_encode(json_t *args, json_t *kwargs);

/** 1 if s is "<token>.<token>" with tokens of letters, digits, '_' and '-'
 * and at most NRPC_MAX_SUBJECT bytes (what a gateway may forward), else 0. A '$' or '_INBOX' first token is
 * refused, as are wildcards and empty tokens. */
int nrpc_subject_is_rpc(const char *s, size_t len);

/** Writes the NATS subject of event topic (NRPC_EVENT_PREFIX + topic) into
 * out. Returns 0, or -1 when topic is not dot-separated tokens of letters,
 * digits, '_' and '-' (no wildcards, no '$') or the subject would pass
 * NRPC_MAX_SUBJECT (or outlen). */
int nrpc_topic_subject(const char *topic, char *out, size_t outlen);

/* ---------------------------------------------------------------------------
 * Asynchronous requests over one shared connection (used by the gateway).
 *
 * Subjects. nrpc_client_request, nrpc_client_gather, nrpc_client_subscribe
 * and nrpc_client_publish refuse a subject longer than NRPC_MAX_SUBJECT
 * bytes with NRPC_ERR_INVALID_ARG before anything reaches NATS, and run no
 * callback: a longer protocol line can make nats-server close the
 * connection that every caller of the client shares.
 */
typedef struct nrpc_client nrpc_client;

/* Connection loss. A request sent on a connection that is lost before its
 * reply arrives is answered at once with 503 "unavailable" and a message
 * saying that the reply may have been lost (the call may have run), on
 * every disconnect, however fast nats.c reconnects: nats.c subscribes the
 * reply inbox again on the new server with the same subject, but a reply
 * the service published before that interest reached the cluster is
 * dropped, and nothing tells which replies were. Precisely: nats.c's
 * disconnected callback raises the connection's generation; every request
 * registered in an older generation is failed (gathers too, with on_done's
 * 503), every later one waits for its reply as usual. A request sent in the
 * instant between the socket's loss and that callback counts as older: it
 * is failed, though its reply (sent through nats.c's reconnect buffer) may
 * still come; never the other way round. nrpc_call_request (outcalls) and
 * the natsrpc CLI follow the same rule. */

typedef struct {
    /** 0 on success, else the error code: the service's
     * Nats-Service-Error-Code, 404 no responders, 504 timeout, 503 NATS
     * down or the connection lost while the request was in flight. */
    int code;
    const char *data; /**< reply body (or an error body we built); borrowed */
    size_t len;
} nrpc_response;

/** Called exactly once per request that nrpc_client_request accepted, on a
 * client thread (NATS delivery or the client's timer thread), or on the
 * client's loop, never from inside nrpc_client_request: it must not block.
 * resp is borrowed for the duration of the callback. */
typedef void (*nrpc_response_cb)(const nrpc_response *resp, void *closure);

typedef struct {
    const char *nats_url; /**< NULL: NATS_URL from the environment, else default */
    const char *name;     /**< connection name shown by the server */
    /** NULL: the client runs threads of its own (a timer thread; nats.c's
     * reader and delivery threads) and every call is thread-safe.
     *
     * Else a uv_loop_t * (libuv) that drives the client instead: nats.c
     * reads and writes the socket on that loop, replies and messages are
     * taken from it after every poll, deadlines run on a timer of the loop.
     * Every callback then runs on the loop's thread, and a request crosses
     * no thread and takes no lock of natsrpc's. The client must be created,
     * used and destroyed on the thread that runs the loop, and after
     * nrpc_client_destroy the loop must run once more to close the
     * client's handles (uv_run until it returns). When NATS is not
     * reachable at create, the client still starts and connects later. */
    void *loop;
} nrpc_client_opts;

/** Connects (retrying in the background; requests made while down fail with
 * 503) and starts the client's threads. *out is new: nrpc_client_destroy. */
nrpc_status nrpc_client_create(nrpc_client **out, const nrpc_client_opts *opts);
/** Fails every pending request (callbacks run), closes, frees. NULL-safe. */
void nrpc_client_destroy(nrpc_client *c);
/** Sends data as a request on subject with the given timeout. Thread-safe.
 * headers, if not NULL, is a NULL-terminated list of name, value pairs
 * added to the request. If it returns an error the callback is never
 * called: NRPC_ERR_INVALID_ARG for a subject over NRPC_MAX_SUBJECT bytes,
 * NRPC_ERR_STATE while NATS is not connected. */
nrpc_status nrpc_client_request(nrpc_client *c, const char *subject, const char *data, size_t len,
                                int64_t timeout_ms, const char *const *headers,
                                nrpc_response_cb cb, void *closure);
/** Tells the client whether subject is served by natsrpc services that send
 * progress heartbeats (see there; the gateway learns it from the marker
 * NRPC_INFO_HEARTBEATS in their $SRV.INFO): expect 1, and every later
 * request to it that asks for heartbeats is watched from the moment it is
 * sent, so that a fast rpc's lost reply shows within 1.5 intervals; expect
 * 0, and it is not any more (until a heartbeat comes for it again). The
 * client copies subject. Thread-safe. NRPC_ERR_NOMEM when out of memory or
 * when 1024 subjects are expected already; NRPC_ERR_INVALID_ARG for a
 * subject over NRPC_MAX_SUBJECT bytes. */
nrpc_status nrpc_client_expect_heartbeats(nrpc_client *c, const char *subject, int expect);
/** 1 while connected to NATS. */
int nrpc_client_connected(nrpc_client *c);
/** Requests waiting for a reply. */
int nrpc_client_pending(nrpc_client *c);
/** The server's max_payload: the most bytes of headers and body one message
 * may carry (1 MiB by default); 0 while not connected. */
int64_t nrpc_client_max_payload(nrpc_client *c);

/** A message delivered to a subscription: everything is borrowed for the
 * duration of the callback. */
typedef struct {
    const char *subject;
    const char *reply; /**< NULL when the sender expects no reply */
    const char *data;  /**< NUL-terminated for convenience; never NULL */
    size_t len;
    void *impl; /**< the library's (for nrpc_message_header) */
} nrpc_message;

/** The first value of header name, or NULL: borrowed like the message. */
const char *nrpc_message_header(const nrpc_message *msg, const char *name);

/** Called for each message on a subscription, on the client's NATS
 * delivery thread (one thread for every subscription of the process), or on
 * the client's loop: it must not block, and must not call
 * nrpc_client_subscribe or nrpc_client_unsubscribe. */
typedef void (*nrpc_message_cb)(const nrpc_message *msg, void *closure);

typedef struct nrpc_subscription nrpc_subscription;

/** Subscribes to subject (wildcards allowed; no queue group, so every
 * subscriber gets every message). Thread-safe. *out is new: release it
 * with nrpc_client_unsubscribe, and do so before nrpc_client_destroy. The
 * subscription survives reconnects. If it returns an error the callback is
 * never called: NRPC_ERR_INVALID_ARG for a subject over NRPC_MAX_SUBJECT
 * bytes. */
nrpc_status nrpc_client_subscribe(nrpc_client *c, const char *subject, nrpc_message_cb cb,
                                  void *closure, nrpc_subscription **out);
/** Ends a subscription and frees it. Once it returns, cb is not running
 * and never runs again for it. Thread-safe (but not from inside cb).
 * NULL-safe. */
void nrpc_client_unsubscribe(nrpc_subscription *sub);
/** Publishes data on subject, with no reply expected. headers as in
 * nrpc_client_request. Thread-safe. Returns NRPC_ERR_INVALID_ARG for a
 * subject over NRPC_MAX_SUBJECT bytes, NRPC_ERR_STATE while NATS is not
 * connected (nothing is buffered for later). */
nrpc_status nrpc_client_publish(nrpc_client *c, const char *subject, const char *data,
                                size_t len, const char *const *headers);
/** Times the connection was re-established by nats.c since the client was
 * created, or since the last rebuild (see below). */
uint64_t nrpc_client_reconnects(nrpc_client *c);
/** Times the client built a new connection because NATS closed the old one
 * for good: nats.c does not reconnect after some server errors (a protocol
 * line over the server's limit, an authorization failure). Requests
 * pending then fail at once with 503; subscriptions move to the new
 * connection by themselves. */
uint64_t nrpc_client_rebuilds(nrpc_client *c);
/** 1 from the moment NATS closed the connection for good until the new one
 * is connected, else 0. Meanwhile calls fail as while disconnected. */
int nrpc_client_rebuilding(nrpc_client *c);

/** Scatter-gather: publishes data (len bytes; NULL and 0 for an empty
 * payload) on subject with a reply inbox of its own and collects every reply
 * that arrives within wait_ms (the service API's $SRV.PING/INFO/STATS).
 * Thread-safe.
 *
 * on_reply runs once per reply, on a client thread (NATS delivery); calls
 * never overlap. resp->code is 0, or the reply's Nats-Service-Error-Code;
 * resp->data is borrowed for the callback. on_done runs exactly once, after
 * the last on_reply has returned, on a client thread: resp->code 0 when
 * wait_ms passed, 404 at once when nobody listens on subject, 503 when the
 * connection dropped or the client is being destroyed (resp->data is then an
 * error body). Neither callback may block. If it returns an error no callback
 * ever runs: NRPC_ERR_INVALID_ARG for a subject over NRPC_MAX_SUBJECT
 * bytes. */
nrpc_status nrpc_client_gather(nrpc_client *c, const char *subject, const char *data, size_t len,
                               int64_t wait_ms, nrpc_response_cb on_reply,
                               nrpc_response_cb on_done, void *closure);

/* ---------------------------------------------------------------------------
 * Logging: one line per event on stderr, "<time> <level> <program>: msg",
 * or a JSON object per line with LOG_FORMAT=json.
 */
void nrpc_log(nrpc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** nrpc_log with a trace id and a request id (either may be NULL), written
 * the way call lines carry them (" trace=... request_id=..." or JSON
 * fields): for programs that are not services, such as the gateway. */
void nrpc_log_ids(nrpc_log_level level, const char *trace_id, const char *request_id,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** For a thread that runs an event loop: nrpc_log_batch(1) keeps the lines
 * this thread logs in a buffer of its own (written whole, in order, when it
 * fills), and nrpc_log_flush() writes them in one write(); the loop calls it
 * before it waits again, so a line is out within one turn of the loop, at a
 * fraction of a write() per line. nrpc_log_batch(0) flushes and ends it.
 * Other threads are not affected. */
void nrpc_log_batch(int on);
void nrpc_log_flush(void);
/** Names the program in log lines (borrowed: pass a string literal or argv[0]). */
void nrpc_log_set_program(const char *name);

/** Monotonic milliseconds. */
int64_t nrpc_now_ms(void);

/* ---------------------------------------------------------------------------
 * Small pieces every natsrpc program shares: one of each.
 */

/** Reads the whole regular file path, at most max bytes: new (free; zero it
 * first when it holds a secret), NUL-terminated, *len its length. NULL with
 * err filled ("cannot read '<path>': <why>", or "'<path>' is larger than
 * <max> bytes") when it cannot. */
char *nrpc_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/** Reads an integer setting from the environment: def when unset; when not a
 * whole number within [min, max], logs a warning and returns def. */
long long nrpc_env_int(const char *name, long long def, long long min, long long max);

/** Parses a whole decimal number (optional sign, no junk, no overflow) into
 * *out. Returns 0, or -1 and leaves *out alone. For numbers in headers. */
int nrpc_parse_int64(const char *s, int64_t *out);

/** The delay before retry number attempt (1, 2, ...): min_ms doubled each
 * attempt up to max_ms, plus up to 10 % jitter so replicas do not retry in
 * lockstep. Used for NATS reconnects and database connections alike. */
int64_t nrpc_backoff_ms(int attempt, int64_t min_ms, int64_t max_ms);

/** The id source: 64 random bits (per-thread generator seeded from the
 * kernel). Not for secrets. */
uint64_t nrpc_random64(void);
/** n random lower-case hex digits into out (not NUL-terminated), never all
 * zero. */
void nrpc_random_hex(char *out, size_t n);

/** The one hash table of natsrpc programs: intrusive (an entry embeds an
 * nrpc_tnode, first in its struct, and is cast back), 64-bit keys (string
 * keys hash with nrpc_hash_str and compare while walking nrpc_table_next),
 * doubling, never shrinking, not thread-safe. Zero-initialised is empty. */
typedef struct nrpc_tnode {
    struct nrpc_tnode *next;
    uint64_t key;
} nrpc_tnode;
typedef struct {
    nrpc_tnode **buckets;
    size_t nbuckets; /* a power of two, or 0 */
    size_t count;
    size_t any_from; /* no entry in a bucket below it (nrpc_table_take_any) */
} nrpc_table;
/* Adds n under key (duplicates allowed). -1 when out of memory. */
int nrpc_table_put(nrpc_table *t, nrpc_tnode *n, uint64_t key);
/* The first entry with key, or NULL; then the next after `after`. */
nrpc_tnode *nrpc_table_get(const nrpc_table *t, uint64_t key);
nrpc_tnode *nrpc_table_next(const nrpc_table *t, nrpc_tnode *after, uint64_t key);
/* Unlinks n; 1 if it was there. */
int nrpc_table_remove(nrpc_table *t, nrpc_tnode *n);
/* Unlinks and returns the first entry with key / any entry, or NULL. */
nrpc_tnode *nrpc_table_take(nrpc_table *t, uint64_t key);
nrpc_tnode *nrpc_table_take_any(nrpc_table *t);
void nrpc_table_free(nrpc_table *t);
uint64_t nrpc_hash_str(const char *s);
/** The same hash over n bytes (nrpc_hash_str(s) == nrpc_hash_bytes(s, strlen(s))). */
uint64_t nrpc_hash_bytes(const void *p, size_t n);


#ifdef __cplusplus
}
#endif
#endif /* NATSRPC_H */
