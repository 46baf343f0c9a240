/*
 * http.c: the libmicrohttpd side of one gateway loop.
 *
 * Each loop runs its own MHD daemon in external-event mode (no MHD
 * thread): a uv_poll watches the daemon's epoll descriptor and MHD_run runs
 * on the loop. MHD's epoll is edge-triggered, so after every run we ask
 * MHD_get_timeout: 0 means it still has ready work, and a uv_idle keeps the
 * loop turning until it has none; otherwise a uv_timer covers its own
 * timeouts (idle connections). A request goes through three calls of the
 * access handler:
 *
 *   first call   headers are in: route, pick the timeout, check
 *                Content-Length. Errors are answered right here.
 *   body calls   append to the request's buffer, counting bytes (chunked
 *                bodies have no Content-Length to check up front: past the
 *                limit they are answered at once, see early_reply.c).
 *   final call   suspend the connection, then send the NATS request on the
 *                loop's client. http_on_reply runs later on the same loop
 *                (the client drains replies after each poll); it stores
 *                the answer, resumes the connection and marks MHD due, and
 *                a uv_prepare runs MHD before the loop polls again, which
 *                calls the handler once more (state REQ_WAIT) to queue the
 *                response.
 *
 * The client calls back exactly once for an accepted request and never for
 * a refused one, in which case we resume ourselves: so every suspend gets
 * exactly one resume. Nothing here takes a lock or leaves the loop's thread.
 *
 * Per request: one gw_req allocation (small bodies fit inside it), the reply
 * copy, which MHD frees with the response (MHD_RESPMEM_MUST_FREE), and what
 * the NATS client needs.
 */
#include "bridge.h"
#include "auth/gate.h"
#include "edge/edge.h"
#include "pages/pages.h"
#include "rest_http.h"
#include "ws/ws.h"

#include <microhttpd.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct gw_http {
    gw_loop *loop;
    struct MHD_Daemon *daemon;
    uv_poll_t poll;   /* MHD's epoll descriptor */
    uv_idle_t idle;   /* MHD has ready work: keep the loop turning */
    uv_timer_t timer; /* MHD's own timeouts */
    uv_prepare_t prep; /* runs MHD before polling when a resume made it due */
    int handles;       /* set up: closed by gw_http_close */
    int due;           /* a connection was resumed: run MHD */
    MHD_socket listen_fd; /* ours after quiesce; closed after MHD_stop_daemon */
    gw_edge *edge;        /* limits at the edge (edge/edge.h) */
    /* The access handler returns MHD_NO to close a connection on purpose
     * (an early 413): MHD then logs "Application reported internal error",
     * which is not one. Set for the handler call that does it. */
    int closing;
};

enum {
    REQ_BODY,   /* reading the body of an rpc call */
    REQ_REJECT, /* answer decided at the first call (r->code, r->reply); body discarded */
    REQ_HEALTH, /* GET /healthz */
    REQ_PAGE,   /* GET of a page of pages.c (r->page) */
    REQ_FRONT,  /* GET /websocket or a front-end file (static.c) */
    REQ_WAIT,   /* suspended until http_on_reply (or a refused request) resumes */
    REQ_DONE,   /* response queued */
    REQ_NEW,    /* the request line is in (http_on_uri), the headers not yet */
};

#define REQ_INLINE_BODY 512

/* Bodies up to this size with a Content-Length get their whole buffer at
 * once; larger ones grow as their bytes come, so a body that is announced
 * but never sent holds little. */
#define REQ_PREALLOC_MAX (64 * 1024)

/* Room kept for a request's NATS headers (Nrpc-Timeout-Ms, the trace
 * context, what other parts of the gateway add): the body gets the
 * server's max_payload minus this. */
#define HTTP_NATS_HEADER_ROOM 2048

/* The longest path written on an access log line. */
#define HTTP_LOG_PATH_MAX 256

/* MHD's memory pool per connection: the request line, headers and read
 * buffer (bodies are copied out as they come). MHD's default, 32 KiB, is
 * what 10,000 waiting connections cost most of their memory in. */
#ifndef HTTP_CONN_MEMORY
#define HTTP_CONN_MEMORY (16 * 1024)
#endif
/* What MHD takes from that pool per query argument (a record, about 56
 * bytes), and what we leave for the headers: see http_on_uri. */
#define HTTP_ARG_COST 64
#define HTTP_HEADER_ROOM 1024

/* gw_req.metric: not an rpc (pages), an rpc subject, or a refused path. */
enum { METRIC_NONE, METRIC_RPC, METRIC_INVALID };

typedef struct {
    gw_http *h;
    struct MHD_Connection *conn;
    int state;
    int status; /* HTTP status queued; 0 until then (for the log) */
    int too_large;
    size_t too_many_args; /* query arguments MHD would choke on (http_on_uri) */
    int over_budget;   /* GATEWAY_MAX_BODY_MEMORY was reached while reading the body */
    size_t max_body;   /* this request's body limit (http_body_limit) */
    const char *allow; /* Allow header of a 405 */
    const char *www_auth; /* WWW-Authenticate of a 401 (static) */
    gw_gate *gate;        /* the permission check (auth on only), then its verdict */
    const char *ctype; /* Content-Type of the answer; NULL: JSON */
    gw_page_kind page;
    int metric;        /* METRIC_*: how /metrics counts this request */
    int counted;       /* counted in /metrics already */
    nrpc_trace trace;    /* traceparent and X-Request-Id, sent on and returned */
    gw_edge_req edge;    /* CORS, Retry-After, body bytes held (edge/edge.h) */
    char idem[NRPC_IDEMPOTENCY_KEY_MAX + 1]; /* Idempotency-Key sent on, "" when none */
    int64_t start_us;
    int64_t timeout_ms;
    char method[12];
    /* request body */
    char *body;
    size_t len, cap;
    size_t discarded; /* body bytes not kept (rejected or too large) */
    /* the answer, written by http_on_reply before it resumes */
    int code;
    char *reply; /* malloc'd; handed to MHD with the response */
    size_t reply_len;
    const char *subject; /* what is called: url + 1, or a REST route's rpc */
    gw_rest_req *rest;   /* a REST route's state (rest_http.h); NULL otherwise */
    char *raw;           /* the request target as sent (percent-encoded, query) */
    char inline_body[REQ_INLINE_BODY];
    char url[]; /* copy of the path, then the raw target (raw) */
} gw_req;

static const char JSON_TYPE[] = "application/json";
static const char OOM_BODY[] =
    "{\"error\":{\"code\":500,\"type\":\"internal\",\"message\":\"out of memory\"}}";

static int64_t
http_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The gateway may exit on out-of-memory (STYLE.md): the library never does. */
static void *
xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        nrpc_log(NRPC_LOG_ERROR, "out of memory (%zu bytes)", n);
        abort();
    }
    return p;
}

/* ---------------------------------------------------------------------------
 * Responses.
 */

/* Counts r in /metrics once: when its answer is queued, so a client that
 * has its answer sees it counted, or at completion when it never got one. */
static void
http_count(gw_req *r)
{
    if (r->metric == METRIC_NONE || r->counted)
        return;
    r->counted = 1;
    if (r->metric == METRIC_RPC) {
        /* Only rpcs the catalog found get a label of their own: made-up
         * subjects must not grow /metrics. */
        const char *name = r->subject;
        size_t n = strlen(name);
        if (!gw_catalog_known(r->h->loop->catalog, name, n))
            name = "other", n = 5;
        gw_metrics_observe(r->h->loop->metrics, name, n, r->status,
                           (double)(http_now_us() - r->start_us) / 1e6);
        return;
    }
    gw_metrics_observe(r->h->loop->metrics, NULL, 0, r->status,
                       (double)(http_now_us() - r->start_us) / 1e6);
}

/* A response of status with body (len bytes) and every header the gateway
 * sets: new (MHD_destroy_response). how is the MHD_ResponseMemoryMode of
 * body; with MHD_RESPMEM_MUST_FREE MHD owns body from here on, even on
 * failure (NULL). */
static struct MHD_Response *
http_response(gw_req *r, char *body, size_t len, enum MHD_ResponseMemoryMode how,
              const char *allow)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(len, body, how);
    if (resp == NULL) {
        if (how == MHD_RESPMEM_MUST_FREE)
            free(body);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r && r->ctype ? r->ctype : JSON_TYPE);
    if (r && r->trace.traceparent[0]) {
        MHD_add_response_header(resp, NRPC_HDR_TRACEPARENT, r->trace.traceparent);
        MHD_add_response_header(resp, NRPC_HDR_REQUEST_ID, r->trace.request_id);
    }
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (r && r->rest)
        gw_rest_req_headers(r->rest, resp);
    if (r && r->www_auth)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_auth);
    if (r)
        gw_edge_headers(&r->edge, resp);
    /* While draining, every answer ends its connection so keep-alive
     * clients move to another gateway. */
    if (r && r->h->loop->draining)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return resp;
}

/* Queues status with body (len bytes). how is the MHD_ResponseMemoryMode of
 * body; with MHD_RESPMEM_MUST_FREE MHD owns body from here on, even on
 * failure. */
static enum MHD_Result
http_send(gw_req *r, struct MHD_Connection *conn, int status, char *body, size_t len,
          enum MHD_ResponseMemoryMode how, const char *allow)
{
    struct MHD_Response *resp = http_response(r, body, len, how, allow);
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO;
    ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (r) {
        r->status = status;
        r->state = REQ_DONE;
        http_count(r);
    }
    return ret;
}

/* Builds {"error": {"code", "type", "message"}} text: new (free). Never
 * NULL: falls back to a static out-of-memory body copied on the heap. */
static char *
http_error_text(int code, const char *type, const char *message, size_t *len)
{
    json_t *body = nrpc_error_body(code, type, message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (text == NULL) {
        text = xmalloc(sizeof OOM_BODY);
        memcpy(text, OOM_BODY, sizeof OOM_BODY);
    }
    *len = strlen(text);
    return text;
}

static enum MHD_Result http_send_error(gw_req *r, struct MHD_Connection *conn, int status,
                                       const char *type, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum MHD_Result
http_send_error(gw_req *r, struct MHD_Connection *conn, int status, const char *type,
                const char *allow, const char *fmt, ...)
{
    char msg[512];
    size_t len;
    char *text;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    text = http_error_text(status, type, msg, &len);
    return http_send(r, conn, status, text, len, MHD_RESPMEM_MUST_FREE, allow);
}

/* Decides the answer at the first call but sends it at the last one: a
 * response queued before the request is fully read makes MHD close the
 * connection, and keep-alive clients would pay a reconnect per error. */
static enum MHD_Result http_reject(gw_req *r, int status, const char *type, const char *allow,
                                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum MHD_Result
http_reject(gw_req *r, int status, const char *type, const char *allow, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->code = status;
    r->reply = http_error_text(status, type, msg, &r->reply_len);
    r->allow = allow;
    r->state = REQ_REJECT;
    return MHD_YES;
}

/* 200 {"status": "ok", "nats_rebuilds": n} while every loop's connection
 * is up, else 503 with a status saying why: a connection dropped (nats.c
 * reconnects), or NATS closed one for good and its loop is building a new
 * one. nats_rebuilds adds up every loop's. */
static enum MHD_Result
http_send_health(gw_req *r, struct MHD_Connection *conn)
{
    const char *status;
    gw_health hl;
    char body[128];
    int up, n;

    gw_gateway_health(r->h->loop, &hl);
    up = !hl.closing && hl.connected == hl.loops;
    status = up                ? "ok"
             : hl.closing      ? "shutting down"
             : hl.rebuilding   ? "nats connection closed; rebuilding it"
                               : "nats disconnected";
    n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"nats_rebuilds\":%llu}", status,
                 hl.rebuilds);
    return http_send(r, conn, up ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body, (size_t)n,
                     MHD_RESPMEM_MUST_COPY, NULL);
}

/* Queues the answer stored by http_on_reply. */
static enum MHD_Result
http_send_reply(gw_req *r, struct MHD_Connection *conn)
{
    int status = r->code == 0 ? MHD_HTTP_OK : r->code;
    char *body;

    if (r->rest && r->state == REQ_WAIT) /* a REST route's rpc answered */
        status = gw_rest_req_answer(r->rest, r->code, &r->reply, &r->reply_len);
    /* Codes outside the HTTP error range cannot travel as a status (204:
     * a CORS preflight). */
    else if (status != MHD_HTTP_OK && status != MHD_HTTP_NO_CONTENT && (status < 400 || status > 599))
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    body = r->reply;
    r->reply = NULL;
    if (body == NULL)
        return http_send(r, conn, status, (char *)"", 0, MHD_RESPMEM_PERSISTENT, r->allow);
    return http_send(r, conn, status, body, r->reply_len, MHD_RESPMEM_MUST_FREE, r->allow);
}

/* ---------------------------------------------------------------------------
 * The NATS side.
 */

/* A connection was resumed: MHD runs before the loop polls again. */
static void
http_resume(gw_http *h, struct MHD_Connection *conn)
{
    MHD_resume_connection(conn);
    h->due = 1;
}

/* The loop's client, once per accepted request: store the answer, then
 * resume. The next MHD run calls the handler, which sends it. */
static void
http_on_reply(const nrpc_response *resp, void *closure)
{
    gw_req *r = closure;

    r->code = resp->code;
    r->reply_len = resp->len;
    r->reply = NULL;
    if (resp->len > 0) {
        r->reply = xmalloc(resp->len);
        memcpy(r->reply, resp->data, resp->len);
    }
    http_resume(r->h, r->conn);
}

/* Sends the request of a suspended connection. The principal header is
 * always ours: the gate's verdict, or none (a client cannot send one: only
 * the headers listed here reach NATS). */
static void
http_send_request(gw_req *r, struct MHD_Connection *conn)
{
    nrpc_client *client = r->h->loop->client;
    nrpc_status st = NRPC_ERR_STATE;
    /* Name/value pairs, ended by a NULL name. */
    const char *headers[9] = {NRPC_HDR_TRACEPARENT, r->trace.traceparent, NRPC_HDR_REQUEST_ID,
                              r->trace.request_id};
    int n = 4;

    if (r->gate && r->gate->principal) {
        headers[n++] = NRPC_HDR_PRINCIPAL;
        headers[n++] = r->gate->principal;
    }
    if (r->idem[0]) {
        headers[n++] = NRPC_HDR_IDEMPOTENCY_KEY;
        headers[n++] = r->idem;
    }
    if (client != NULL)
        st = nrpc_client_request(client, r->subject, r->body, r->len, r->timeout_ms, headers,
                                 http_on_reply, r);
    if (st != NRPC_OK) {
        /* The callback will never run: answer 503 ourselves. */
        size_t len;
        char msg[128];

        if (st == NRPC_ERR_STATE)
            snprintf(msg, sizeof msg, "NATS is not connected");
        else
            snprintf(msg, sizeof msg, "cannot send the request: %s", nrpc_status_text(st));
        r->code = NRPC_CODE_UNAVAILABLE;
        r->reply = http_error_text(NRPC_CODE_UNAVAILABLE, "unavailable", msg, &len);
        r->reply_len = len;
        http_resume(r->h, conn);
    }
}

/* The gate's verdict (auth/gate.c): refuse, or send the request. */
static void
http_on_gate(gw_gate *g, void *closure)
{
    gw_req *r = closure;

    if (g->status == 0) {
        http_send_request(r, r->conn);
        return;
    }
    r->code = g->status;
    r->reply = http_error_text(g->status,
                               g->status == 401   ? "unauthenticated"
                               : g->status == 403 ? "permission_denied"
                                                  : "unavailable",
                               g->msg, &r->reply_len);
    r->www_auth = g->challenge;
    http_resume(r->h, r->conn);
}

/* Final call: suspend, pass the gate (auth on), send the request. The
 * subject is the rpc's, whichever route led here. */
static enum MHD_Result
http_forward(gw_req *r, struct MHD_Connection *conn)
{
    gw_loop *l = r->h->loop;

    r->state = REQ_WAIT;
    MHD_suspend_connection(conn);
    if (l->cfg->auth == NULL) {
        http_send_request(r, conn);
        return MHD_YES;
    }
    r->gate = xmalloc(sizeof *r->gate);
    if (gw_gate_start(r->gate, l, r->subject, strlen(r->subject),
                      MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_AUTHORIZATION),
                      http_on_gate, r))
        http_on_gate(r->gate, r);
    return MHD_YES;
}

/* ---------------------------------------------------------------------------
 * Pages (pages.c): answered like an rpc, through a callback that may come
 * later (after a catalog gather), so the connection is suspended first.
 */

static void
http_on_page(void *closure, int status, const char *ctype, char *body, size_t len)
{
    gw_req *r = closure;

    r->code = status == MHD_HTTP_OK ? 0 : status;
    r->ctype = body ? ctype : NULL;
    r->reply = body;
    r->reply_len = len;
    if (body == NULL) {
        r->code = MHD_HTTP_INTERNAL_SERVER_ERROR;
        r->reply = http_error_text(r->code, "internal", "out of memory", &r->reply_len);
    }
    http_resume(r->h, r->conn);
}

static enum MHD_Result
http_page(gw_req *r, struct MHD_Connection *conn)
{
    gw_loop *l = r->h->loop;
    gw_page_env env = {.catalog = l->catalog, .docs_dir = l->cfg->docs_dir};
    const char *refresh = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "refresh");

    env.metrics = gw_gateway_metrics(l->gw, &env.nmetrics);
    if (r->page == GW_PAGE_METRICS) {
        gw_health hl;
        gw_gateway_health(l, &hl);
        env.gauges.in_flight = hl.in_flight;
        env.gauges.nats_connected = !hl.closing && hl.connected == hl.loops;
        env.gauges.nats_reconnects = hl.reconnects;
    }
    r->state = REQ_WAIT;
    MHD_suspend_connection(conn);
    gw_page_serve(&env, r->page, r->url, refresh && strcmp(refresh, "0") != 0, http_on_page, r);
    return MHD_YES;
}

/* ---------------------------------------------------------------------------
 * The access handler.
 */

/* The largest body a request may send: GATEWAY_MAX_BODY, or less when
 * NATS could not carry it (max_payload counts the headers too). Without
 * this a body just under 1 MiB passed our check and then failed the
 * publish, which answered 503 where 413 is the truth. */
static size_t
http_body_limit(gw_http *h)
{
    size_t max = h->loop->cfg->max_body;
    int64_t mp = h->loop->client ? nrpc_client_max_payload(h->loop->client) : 0;

    if (mp > HTTP_NATS_HEADER_ROOM && (uint64_t)(mp - HTTP_NATS_HEADER_ROOM) < (uint64_t)max)
        max = (size_t)(mp - HTTP_NATS_HEADER_ROOM);
    return max;
}

/* Grows r's buffer to hold at least need bytes, within the gateway's body
 * memory (GATEWAY_MAX_BODY_MEMORY). 0, or -1 when that is spent. */
static int
http_body_grow(gw_req *r, size_t need)
{
    size_t cap = r->cap * 2;
    char *b;

    while (cap < need)
        cap *= 2;
    if (cap > r->max_body)
        cap = r->max_body;
    if (gw_edge_body_grow(r->h->edge, &r->edge, cap) != 0)
        return -1;
    if (r->body == r->inline_body) {
        b = xmalloc(cap);
        memcpy(b, r->body, r->len);
    } else {
        b = realloc(r->body, cap);
        if (b == NULL) {
            nrpc_log(NRPC_LOG_ERROR, "out of memory (%zu bytes)", cap);
            abort();
        }
    }
    r->body = b;
    r->cap = cap;
    return 0;
}

static void
http_body_append(gw_req *r, const char *data, size_t n)
{
    if (r->too_large || r->over_budget) {
        r->discarded += n;
        return;
    }
    if (n > r->max_body - r->len) {
        r->too_large = 1;
        r->discarded += n;
        return;
    }
    if (r->len + n > r->cap && http_body_grow(r, r->len + n) != 0) {
        r->over_budget = 1;
        r->discarded += n;
        return;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
}

/* MHD's URI log callback: the request line is in. The request's state is
 * allocated here because this is the one place MHD shows the target as the
 * client sent it (the access handler gets it percent-decoded, where a
 * REST parameter's "%2F" would look like a path separator). Its return
 * value is the first *con_cls of the access handler. */
static void *
http_on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    gw_http *h = cls;
    size_t ulen = strlen(uri);
    gw_req *r;

    /* The decoded path is never longer than the raw target. */
    r = xmalloc(sizeof *r + 2 * (ulen + 1));
    memset(r, 0, sizeof *r);
    r->raw = r->url + ulen + 1;
    memcpy(r->raw, uri, ulen + 1);
    r->h = h;
    r->conn = conn;
    r->start_us = http_now_us();
    r->body = r->inline_body;
    r->cap = sizeof r->inline_body;
    r->state = REQ_NEW;
    /* MHD (0.9.75) stores each query argument in the connection's pool
     * right after this callback; when the pool runs out it queues a 431
     * but ignores the failure, goes on with the request and never answers
     * it: the connection hangs, past its timeout. So a query with more
     * arguments than the pool can hold is cut here, before MHD parses it
     * (uri is MHD's writable read buffer, where it puts a NUL after the
     * '?' itself), and answered 414 by http_begin from the raw copy. */
    {
        char *q = strchr(uri, '?');
        size_t n = 0;
        const char *c;
        if (q != NULL) {
            for (c = q, n = 1; *c; c++)
                n += *c == '&';
            if (ulen + n * HTTP_ARG_COST + HTTP_HEADER_ROOM > HTTP_CONN_MEMORY) {
                r->too_many_args = n;
                q[1] = '\0';
            }
        }
    }
    return r;
}

/* A REST route matched at the first call (r->rest): an answer decided now,
 * or the rpc to call with the body once it is in. 1 when it answered. */
static int
http_rest_begin(gw_req *r)
{
    const char *type, *allow, *msg;
    int status;

    if (gw_rest_req_error(r->rest, &status, &type, &allow, &msg)) {
        r->metric = METRIC_INVALID;
        http_reject(r, status, type, allow, "%s", msg);
        return 1;
    }
    r->subject = gw_rest_req_subject(r->rest);
    r->metric = METRIC_RPC;
    return 0;
}

/* The final call of a REST route: the body becomes [[], kwargs]. 0, or an
 * error was queued. */
static int
http_rest_body(gw_req *r, struct MHD_Connection *conn, enum MHD_Result *ret)
{
    char err[512], *out;
    const char *type = NULL;
    size_t n = 0;
    int status = gw_rest_req_body(r->rest, r->body, r->len, &out, &n, &type, err, sizeof err);

    if (status != 0) {
        *ret = http_send_error(r, conn, status, type, NULL, "%s", err);
        return -1;
    }
    if (r->body != r->inline_body)
        free(r->body);
    r->body = out;
    r->len = r->cap = n;
    return 0;
}

/* 413 (size: the Content-Length, 0 when unknown) or 503, decided into r
 * (http_reject), to send now or early (http_reply_early). */
static void
http_decide_too_large(gw_req *r, unsigned long long size)
{
    if (size)
        http_reject(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", NULL,
                    "request body of %llu bytes exceeds the limit of %zu bytes", size,
                    r->max_body);
    else
        http_reject(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", NULL,
                    "request body exceeds the limit of %zu bytes", r->max_body);
}

static void
http_decide_busy(gw_req *r)
{
    r->edge.retry_after = 1;
    http_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded", NULL,
                "the gateway holds as many unfinished request bodies as it may "
                "(GATEWAY_MAX_BODY_MEMORY, %zu bytes); retry later",
                r->h->loop->cfg->body_memory);
}

static enum MHD_Result
http_send_too_large(gw_req *r, struct MHD_Connection *conn, unsigned long long size)
{
    http_decide_too_large(r, size);
    return http_send_reply(r, conn);
}

static enum MHD_Result
http_send_busy(gw_req *r, struct MHD_Connection *conn)
{
    http_decide_busy(r);
    return http_send_reply(r, conn);
}

/* The answer decided in r (http_reject), while the body is still coming:
 * written on the socket (early_reply.c), and MHD_NO makes MHD close the
 * connection without reading the rest of the body, however long the
 * client would stream it. */
static enum MHD_Result
http_reply_early(gw_req *r, struct MHD_Connection *conn)
{
    int status = r->code;
    struct MHD_Response *resp =
        http_response(r, r->reply ? r->reply : (char *)"", r->reply ? r->reply_len : 0,
                      MHD_RESPMEM_PERSISTENT, r->allow);

    if (resp != NULL) {
        if (gw_early_reply(conn, (unsigned)status, resp, r->reply, r->reply ? r->reply_len : 0) !=
            0)
            nrpc_log(NRPC_LOG_DEBUG, "http: the early %d could not be written whole", status);
        MHD_destroy_response(resp);
    }
    free(r->reply);
    r->reply = NULL;
    r->status = status;
    r->state = REQ_DONE;
    http_count(r);
    r->h->closing = 1;
    return MHD_NO;
}

/* First call for a request: its state (from http_on_uri), route, check
 * what can be checked before the body. */
static enum MHD_Result
http_begin(gw_http *h, struct MHD_Connection *conn, const char *url, const char *method,
           void **con_cls)
{
    const gw_config *cfg = h->loop->cfg;
    size_t ulen = strlen(url), slen;
    const char *subject, *v;
    gw_route_kind kind;
    gw_req *r = *con_cls;
    int is_post;

    memcpy(r->url, url, ulen + 1);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->subject = r->url + 1;
    r->timeout_ms = cfg->timeout_ms;
    r->state = REQ_BODY;
    r->max_body = http_body_limit(h);
    gw_count_add(&h->loop->in_flight, 1); /* a request once its headers are in */
    nrpc_trace_begin(&r->trace,
                   MHD_lookup_connection_value(conn, MHD_HEADER_KIND, NRPC_HDR_TRACEPARENT),
                   MHD_lookup_connection_value(conn, MHD_HEADER_KIND, NRPC_HDR_REQUEST_ID));
    {
        /* Rate, CSRF and CORS (edge/edge.h), before anything else. */
        const char *etype, *emsg;
        int st = gw_edge_request(h->edge, conn, method, &r->edge, &etype, &emsg);

        if (st != 0)
            return http_reject(r, st, etype, NULL, "%s", emsg);
        if (r->edge.preflight) {
            r->state = REQ_REJECT;
            r->code = MHD_HTTP_NO_CONTENT;
            return MHD_YES;
        }
    }
    if (r->too_many_args)
        return http_reject(r, MHD_HTTP_URI_TOO_LONG, "too_large", NULL,
                           "the query string is too large: %zu arguments in a %zu-byte target",
                           r->too_many_args, strlen(r->raw));

    is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    /* GET pages first: /openapi.json and /metadata.json are rpc-shaped. */
    if (!is_post && (r->page = gw_page_match(url)) != GW_PAGE_NONE) {
        if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
            r->state = REQ_PAGE;
            return MHD_YES;
        }
        return http_reject(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "GET, HEAD",
                           "%s is not allowed on %.200s", method, url);
    }
    /* GET /websocket and the front end's files (/app.js is rpc-shaped too). */
    if (!is_post && gw_front_match(cfg, url, method)) {
        r->state = REQ_FRONT;
        return MHD_YES;
    }
    kind = gw_route_match(url, &subject, &slen);
    /* Not /healthz, not POST /<service>.<method>: maybe a REST route. */
    if (kind != GW_ROUTE_HEALTHZ && !(kind == GW_ROUTE_RPC && is_post) &&
        (r->rest = gw_rest_req_begin(h->loop->catalog, method, r->raw,
                                     MHD_lookup_connection_value(
                                         conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_TYPE))) != NULL) {
        if (http_rest_begin(r))
            return MHD_YES;
        goto call;
    }
    r->metric = kind == GW_ROUTE_RPC && is_post                        ? METRIC_RPC
                : kind == GW_ROUTE_HEALTHZ                             ? METRIC_NONE
                : kind == GW_ROUTE_RPC || kind == GW_ROUTE_BAD_RPC || is_post ? METRIC_INVALID
                                                                       : METRIC_NONE;
    switch (kind) {
    case GW_ROUTE_HEALTHZ:
        if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
            r->state = REQ_HEALTH;
            return MHD_YES;
        }
        return http_reject(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "GET, HEAD",
                           "%s is not allowed on /healthz", method);
    case GW_ROUTE_NOT_FOUND:
        if (is_post)
            return http_reject(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", NULL,
                               "the path must be /<service>.<method>, got %.200s", url);
        return http_reject(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such path: %.200s", url);
    case GW_ROUTE_BAD_RPC:
        if (!is_post)
            return http_reject(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such path: %.200s",
                               url);
        if (slen > NRPC_MAX_SUBJECT)
            return http_reject(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", NULL,
                               "not an rpc subject: '%.64s...' is %zu bytes, the limit is %d",
                               subject, slen, NRPC_MAX_SUBJECT);
        return http_reject(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", NULL,
                           "not an rpc subject: '%.200s' (expected <service>.<method> "
                           "made of letters, digits, '_' and '-')",
                           subject);
    case GW_ROUTE_RPC: break;
    }
    /* A GET is how browsers and crawlers look for things (/favicon.ico,
     * /robots.txt are rpc-shaped too): nothing here answers GET, so 404.
     * Other methods are the caller's mistake about how to call. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
        return http_reject(r, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such path: %.200s", url);
    if (!is_post)
        return http_reject(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "POST",
                           "use POST to call %.200s", subject);
call:
    /* A REST route's query string is its rpc's parameters: X-Timeout only. */
    v = r->rest ? NULL : MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "timeout");
    if (v == NULL)
        v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Timeout");
    if (v != NULL && gw_parse_timeout(v, GW_MAX_TIMEOUT_MS, &r->timeout_ms) != 0)
        return http_reject(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", NULL,
                           "timeout must be a number of seconds > 0, got '%.64s'", v);

    {
        char why[200];
        if (gw_idempotency_key(conn, r->idem, why, sizeof why) < 0)
            return http_reject(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", NULL, "%s", why);
    }

    v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v != NULL) {
        char *end = NULL;
        unsigned long long cl;

        errno = 0;
        cl = strtoull(v, &end, 10);
        if (errno == 0 && end != v && *end == '\0') {
            /* Too large: answered at once, so the body is never read (MHD
             * then closes the connection). */
            if (cl > r->max_body)
                return http_send_too_large(r, conn, cl);
            /* Known small size: one buffer of the right size instead of
             * doubling. */
            if (cl > r->cap && cl <= REQ_PREALLOC_MAX) {
                if (gw_edge_body_grow(h->edge, &r->edge, (size_t)cl) != 0)
                    return http_send_busy(r, conn);
                r->body = xmalloc((size_t)cl);
                r->cap = (size_t)cl;
            }
        }
    }
    return MHD_YES;
}

static enum MHD_Result
http_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                const char *version, const char *upload_data, size_t *upload_data_size,
                void **con_cls)
{
    gw_req *r = *con_cls;
    enum MHD_Result ret;

    ((gw_http *)cls)->closing = 0;
    if (r == NULL) /* http_on_uri runs first for every request */
        return MHD_NO;
    if (r->state == REQ_NEW)
        return http_begin(cls, conn, url, method, con_cls);
    switch (r->state) {
    case REQ_BODY:
        if (*upload_data_size > 0) {
            http_body_append(r, upload_data, *upload_data_size);
            *upload_data_size = 0;
            /* A chunked body past the limit, or no memory left for bodies:
             * answered now, and the connection closed unread. */
            if (!r->too_large && !r->over_budget)
                return MHD_YES;
            if (r->too_large)
                http_decide_too_large(r, 0);
            else
                http_decide_busy(r);
            return http_reply_early(r, conn);
        }
        if (r->rest && http_rest_body(r, conn, &ret) != 0)
            return ret;
        return http_forward(r, conn);
    case REQ_REJECT:
    case REQ_HEALTH:
    case REQ_PAGE:
    case REQ_FRONT:
        if (*upload_data_size > 0) {
            /* Not ours to read; bounded so a rejected endless chunked
             * upload cannot hold the connection forever: past the limit a
             * decided answer goes out early, the others just close. */
            r->discarded += *upload_data_size;
            *upload_data_size = 0;
            if (r->discarded <= r->h->loop->cfg->max_body)
                return MHD_YES;
            r->h->closing = 1;
            return r->state == REQ_REJECT ? http_reply_early(r, conn) : MHD_NO;
        }
        if (r->state == REQ_HEALTH)
            return http_send_health(r, conn);
        if (r->state == REQ_PAGE)
            return http_page(r, conn);
        if (r->state == REQ_FRONT) {
            r->state = REQ_DONE;
            return (enum MHD_Result)gw_front_respond(r->h->loop->ws, r->h->loop->cfg, conn, r->url,
                                                     r->method, &r->status);
        }
        return http_send_reply(r, conn);
    case REQ_WAIT: return http_send_reply(r, conn);
    default:
        /* Answered already; MHD is only flushing the rest of the body. */
        *upload_data_size = 0;
        return MHD_YES;
    }
}

static void
http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe)
{
    gw_http *h = cls;
    gw_req *r = *con_cls;

    if (r == NULL)
        return;
    http_count(r);
    /* REQ_NEW: the request ended before its headers were in (never seen). */
    if (h->loop->cfg->access_log && r->state != REQ_NEW) {
        /* Milliseconds with two decimals, in integers (cheaper than %.2f). */
        long long cs = (http_now_us() - r->start_us + 5) / 10;
        if (cs < 0)
            cs = 0;
        /* The path is the client's: bounded here, escaped by the logger. */
        int plen = (int)strnlen(r->url, HTTP_LOG_PATH_MAX + 1);
        const char *more = plen > HTTP_LOG_PATH_MAX ? "..." : "";

        if (plen > HTTP_LOG_PATH_MAX)
            plen = HTTP_LOG_PATH_MAX;
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            nrpc_log_ids(NRPC_LOG_INFO, r->trace.trace_id, r->trace.request_id,
                         "%s %.*s%s %d %lld.%02lld ms", r->method, plen, r->url, more, r->status,
                         cs / 100, cs % 100);
        else
            nrpc_log_ids(NRPC_LOG_INFO, r->trace.trace_id, r->trace.request_id,
                         "%s %.*s%s %d %lld.%02lld ms (connection ended early, reason %d)",
                         r->method, plen, r->url, more, r->status, cs / 100, cs % 100, (int)toe);
    }
    if (r->body != r->inline_body)
        free(r->body);
    gw_edge_done(&r->edge);
    free(r->reply);
    gw_rest_req_free(r->rest);
    if (r->state != REQ_NEW)
        gw_count_add(&h->loop->in_flight, -1);
    if (r->gate) {
        gw_gate_clear(r->gate);
        free(r->gate);
    }
    free(r);
    *con_cls = NULL;
}

/* MHD's own error messages go to our log. */
static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    gw_http *h = cls;
    char line[1024];
    size_t n;

    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (h != NULL && h->closing && strstr(line, "Application reported internal error")) {
        h->closing = 0; /* our own close (see gw_http.closing): no warning */
        nrpc_log(NRPC_LOG_DEBUG, "http: connection closed after its early answer");
        return;
    }
    nrpc_log(NRPC_LOG_WARN, "http: %s", line);
}

/* ---------------------------------------------------------------------------
 * Driving MHD from the loop.
 */

static void http_on_idle(uv_idle_t *t);
static void http_on_timer(uv_timer_t *t);

/* Runs MHD, then asks when it wants to run again: at once (its ready list
 * is not empty), after a timeout, or on an event of its epoll. */
static void
http_run(gw_http *h)
{
    MHD_UNSIGNED_LONG_LONG t = 0;

    h->due = 0;
    MHD_run(h->daemon);
    if (MHD_get_timeout(h->daemon, &t) != MHD_YES) {
        uv_idle_stop(&h->idle);
        uv_timer_stop(&h->timer);
    } else if (t == 0) {
        uv_idle_start(&h->idle, http_on_idle);
    } else {
        uv_idle_stop(&h->idle);
        uv_timer_start(&h->timer, http_on_timer, (uint64_t)t, 0);
    }
}

static void
http_on_poll(uv_poll_t *p, int status, int events)
{
    http_run(p->data);
}

static void
http_on_idle(uv_idle_t *t)
{
    http_run(t->data);
}

static void
http_on_timer(uv_timer_t *t)
{
    http_run(t->data);
}

/* Before the loop polls: what NATS callbacks resumed gets written now. */
static void
http_on_prepare(uv_prepare_t *p)
{
    gw_http *h = p->data;

    if (h->due)
        http_run(h);
}

/* ---------------------------------------------------------------------------
 * Life cycle, on the loop's thread.
 */

nrpc_status
gw_http_start(gw_http **out, gw_loop *l, int listen_fd, int ipv6)
{
    const gw_config *cfg = l->cfg;
    const union MHD_DaemonInfo *info;
    unsigned flags, limit;
    gw_http *h;

    h = calloc(1, sizeof *h);
    if (h == NULL) {
        close(listen_fd);
        return NRPC_ERR_NOMEM;
    }
    h->loop = l;
    h->listen_fd = MHD_INVALID_SOCKET;
    if (gw_edge_start(&h->edge, l) != NRPC_OK) {
        close(listen_fd);
        free(h);
        return NRPC_ERR_NOMEM;
    }
    /* No threading flag: external events. MHD_ALLOW_SUSPEND_RESUME adds the
     * eventfd a resume signals, which sits in MHD's epoll. */
    flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    /* GATEWAY_MAX_CONNECTIONS is for the gateway: each loop takes its share. */
    limit = cfg->conn_limit / (cfg->threads ? cfg->threads : 1);
    h->daemon = MHD_start_daemon(
        flags, 0, (MHD_AcceptPolicyCallback)gw_edge_accept, h->edge, http_on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, h, /* first, so it sees everything */
        MHD_OPTION_NOTIFY_CONNECTION, (MHD_NotifyConnectionCallback)gw_edge_on_connection, h->edge,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)(limit ? limit : 1), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_CONN_MEMORY, MHD_OPTION_URI_LOG_CALLBACK, http_on_uri, h,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)cfg->conn_timeout, MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, h,
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        nrpc_log(NRPC_LOG_ERROR, "loop %u: cannot start the HTTP daemon: %s", l->index,
                 strerror(errno));
        close(listen_fd);
        gw_edge_free(h->edge);
        free(h);
        return NRPC_ERR_SYSTEM;
    }
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL || uv_poll_init(&l->uv, &h->poll, info->epoll_fd) != 0) {
        nrpc_log(NRPC_LOG_ERROR, "loop %u: cannot watch the HTTP daemon", l->index);
        MHD_stop_daemon(h->daemon);
        gw_edge_free(h->edge);
        free(h);
        return NRPC_ERR_SYSTEM;
    }
    uv_idle_init(&l->uv, &h->idle);
    uv_timer_init(&l->uv, &h->timer);
    uv_prepare_init(&l->uv, &h->prep);
    h->poll.data = h->idle.data = h->timer.data = h->prep.data = h;
    h->handles = 4;
    uv_poll_start(&h->poll, UV_READABLE, http_on_poll);
    uv_prepare_start(&h->prep, http_on_prepare);
    gw_edge_arm(h->edge);
    http_run(h); /* arms the timer and takes what is already there */
    *out = h;
    return NRPC_OK;
}

void
gw_http_due(void *h)
{
    ((gw_http *)h)->due = 1;
}

void
gw_http_quiesce(gw_http *h)
{
    if (h == NULL)
        return;
    h->loop->draining = 1;
    if (h->listen_fd == MHD_INVALID_SOCKET)
        h->listen_fd = MHD_quiesce_daemon(h->daemon);
    h->due = 1;
}

void
gw_http_close(gw_http *h)
{
    if (h == NULL || h->handles == 0)
        return;
    h->handles = 0;
    uv_close((uv_handle_t *)&h->poll, NULL);
    uv_close((uv_handle_t *)&h->idle, NULL);
    uv_close((uv_handle_t *)&h->timer, NULL);
    uv_close((uv_handle_t *)&h->prep, NULL);
    gw_edge_close(h->edge);
}

void
gw_http_free(gw_http *h)
{
    if (h == NULL)
        return;
    /* Every suspended request was resumed before (the client's release
     * answered them), and every upgraded socket went back to MHD. */
    MHD_stop_daemon(h->daemon);
    if (h->listen_fd != MHD_INVALID_SOCKET)
        close(h->listen_fd);
    gw_edge_free(h->edge);
    free(h);
}
