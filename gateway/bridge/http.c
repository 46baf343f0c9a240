/*
 * http.c: the libmicrohttpd side of the gateway.
 *
 * MHD runs a small pool of epoll threads; no request ever blocks one. A
 * request goes through three calls of the access handler:
 *
 *   first call   headers are in: route, pick the timeout, check
 *                Content-Length. Errors are answered right here.
 *   body calls   append to the request's buffer, counting bytes (chunked
 *                bodies have no Content-Length to check up front).
 *   final call   suspend the connection, then send the NATS request. The
 *                client calls http_on_reply later on one of its threads;
 *                it stores the answer in the request and resumes the
 *                connection, and MHD calls the handler once more (state
 *                REQ_WAIT) to queue the response.
 *
 * Suspending before the request is sent is what makes the early reply safe:
 * a reply can only resume a connection that is already suspended. The client
 * calls back exactly once for an accepted request and never for a refused one,
 * in which case we resume ourselves: so every suspend gets exactly one resume.
 *
 * Per request: one gw_req allocation (small bodies fit inside it), the reply
 * copy, which MHD frees with the response (MHD_RESPMEM_MUST_FREE), and what
 * the NATS client needs.
 */
#include "bridge.h"
#include "pages/pages.h"
#include "ws/ws.h"

#include <microhttpd.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct gw_server {
    gw_config cfg;
    struct MHD_Daemon *daemon;
    /* Read-locked while a request uses the client, write-locked by
     * gw_server_detach_client: after that no request touches it. */
    pthread_rwlock_t client_lock;
    nrpc_client *client;
    atomic_int in_flight;
    atomic_int draining;
    MHD_socket listen_fd; /* ours after quiesce; closed after MHD_stop_daemon */
    char host[256];
    gw_metrics *metrics;  /* pages.c and metrics.c */
    gw_catalog *catalog;
    char docs_dir[1024];
    gw_ws *ws; /* GET /websocket: ws.c's loop */
};

enum {
    REQ_BODY,   /* reading the body of an rpc call */
    REQ_REJECT, /* answer decided at the first call (r->code, r->reply); body discarded */
    REQ_HEALTH, /* GET /healthz */
    REQ_PAGE,   /* GET of a page of pages.c (r->page) */
    REQ_FRONT,  /* GET /websocket or a front-end file (static.c) */
    REQ_WAIT,   /* suspended until http_on_reply (or a refused request) resumes */
    REQ_DONE,   /* response queued */
};

#define REQ_INLINE_BODY 512

/* gw_req.metric: not an rpc (pages), an rpc subject, or a refused path. */
enum { METRIC_NONE, METRIC_RPC, METRIC_INVALID };

typedef struct {
    gw_server *gw;
    struct MHD_Connection *conn;
    int state;
    int status; /* HTTP status queued; 0 until then (for the log) */
    int too_large;
    const char *allow; /* Allow header of a 405 */
    const char *ctype; /* Content-Type of the answer; NULL: JSON */
    gw_page_kind page;
    int metric;        /* METRIC_*: how /metrics counts this request */
    int counted;       /* counted in /metrics already */
    nrpc_trace trace;    /* traceparent and X-Request-Id, sent on and returned */
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
    char inline_body[REQ_INLINE_BODY];
    char url[]; /* copy of the path; the subject is url + 1 */
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
    gw_metrics_observe(r->gw->metrics, r->metric == METRIC_RPC ? r->url + 1 : NULL,
                       r->metric == METRIC_RPC ? strlen(r->url + 1) : 0, r->status,
                       (double)(http_now_us() - r->start_us) / 1e6);
}

/* Queues status with body (len bytes). how is the MHD_ResponseMemoryMode of
 * body; with MHD_RESPMEM_MUST_FREE MHD owns body from here on, even on
 * failure. */
static enum MHD_Result
http_send(gw_req *r, struct MHD_Connection *conn, int status, char *body, size_t len,
          enum MHD_ResponseMemoryMode how, const char *allow)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, body, how);
    if (resp == NULL) {
        if (how == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r && r->ctype ? r->ctype : JSON_TYPE);
    if (r && r->trace.traceparent[0]) {
        MHD_add_response_header(resp, NRPC_HDR_TRACEPARENT, r->trace.traceparent);
        MHD_add_response_header(resp, NRPC_HDR_REQUEST_ID, r->trace.request_id);
    }
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    /* While draining, every answer ends its connection so keep-alive
     * clients move to another gateway. */
    if (r && atomic_load_explicit(&r->gw->draining, memory_order_relaxed))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
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

/* 200 {"status": "ok", "nats_rebuilds": n} while connected, else 503 with
 * a status saying why: the connection dropped (nats.c reconnects), or NATS
 * closed it for good and the client is building a new one. */
static enum MHD_Result
http_send_health(gw_req *r, struct MHD_Connection *conn)
{
    nrpc_client *c;
    const char *status;
    unsigned long long rebuilds = 0;
    char body[128];
    int up = 0, n;

    pthread_rwlock_rdlock(&r->gw->client_lock);
    c = r->gw->client;
    if (c != NULL) {
        up = nrpc_client_connected(c);
        rebuilds = nrpc_client_rebuilds(c);
    }
    status = up                                       ? "ok"
             : c != NULL && nrpc_client_rebuilding(c) ? "nats connection closed; rebuilding it"
                                                      : "nats disconnected";
    pthread_rwlock_unlock(&r->gw->client_lock);
    n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"nats_rebuilds\":%llu}", status, rebuilds);
    return http_send(r, conn, up ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body, (size_t)n,
                     MHD_RESPMEM_MUST_COPY, NULL);
}

/* Queues the answer stored by http_on_reply. */
static enum MHD_Result
http_send_reply(gw_req *r, struct MHD_Connection *conn)
{
    int status = r->code == 0 ? MHD_HTTP_OK : r->code;
    char *body = r->reply;

    /* Codes outside the HTTP error range cannot travel as a status. */
    if (status != MHD_HTTP_OK && (status < 400 || status > 599))
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    r->reply = NULL;
    if (body == NULL)
        return http_send(r, conn, status, (char *)"", 0, MHD_RESPMEM_PERSISTENT, r->allow);
    return http_send(r, conn, status, body, r->reply_len, MHD_RESPMEM_MUST_FREE, r->allow);
}

/* ---------------------------------------------------------------------------
 * The NATS side.
 */

/* Client thread: store the answer, then resume. After MHD_resume_connection
 * the request belongs to MHD's thread again: r must not be touched. */
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
    MHD_resume_connection(r->conn);
}

/* Final call: suspend, then send the request. */
static enum MHD_Result
http_forward(gw_req *r, struct MHD_Connection *conn)
{
    gw_server *gw = r->gw;
    nrpc_status st = NRPC_ERR_STATE;
    const char *headers[] = {NRPC_HDR_TRACEPARENT, r->trace.traceparent, NRPC_HDR_REQUEST_ID,
                             r->trace.request_id, NULL};

    r->state = REQ_WAIT;
    MHD_suspend_connection(conn);
    pthread_rwlock_rdlock(&gw->client_lock);
    if (gw->client != NULL)
        st = nrpc_client_request(gw->client, r->url + 1, r->body, r->len, r->timeout_ms, headers,
                                 http_on_reply, r);
    pthread_rwlock_unlock(&gw->client_lock);
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
        MHD_resume_connection(conn);
    }
    return MHD_YES;
}

/* ---------------------------------------------------------------------------
 * Pages (pages.c): answered like an rpc, through a callback that may come
 * later from the catalog's thread, so the connection is suspended first.
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
    MHD_resume_connection(r->conn);
}

static enum MHD_Result
http_page(gw_req *r, struct MHD_Connection *conn)
{
    gw_server *gw = r->gw;
    gw_page_env env = {.catalog = gw->catalog, .metrics = gw->metrics, .docs_dir = gw->docs_dir};
    const char *refresh = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "refresh");

    if (r->page == GW_PAGE_METRICS) {
        env.gauges.in_flight = atomic_load(&gw->in_flight);
        pthread_rwlock_rdlock(&gw->client_lock);
        env.gauges.nats_connected = gw->client != NULL && nrpc_client_connected(gw->client);
        env.gauges.nats_reconnects = nrpc_client_reconnects(gw->client);
        pthread_rwlock_unlock(&gw->client_lock);
    }
    r->state = REQ_WAIT;
    MHD_suspend_connection(conn);
    gw_page_serve(&env, r->page, r->url, refresh && strcmp(refresh, "0") != 0, http_on_page, r);
    return MHD_YES;
}

/* ---------------------------------------------------------------------------
 * The access handler.
 */

static void
http_body_append(gw_req *r, const char *data, size_t n)
{
    size_t max = r->gw->cfg.max_body;

    if (r->too_large || n > max - r->len) {
        r->too_large = 1; /* keep reading, answer 413 at the end */
        r->discarded += n;
        return;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap * 2;
        char *b;

        while (cap < r->len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
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
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
}

/* First call for a request: allocate its state, route, check what can be
 * checked before the body. */
static enum MHD_Result
http_begin(gw_server *gw, struct MHD_Connection *conn, const char *url, const char *method,
           void **con_cls)
{
    size_t ulen = strlen(url), slen;
    const char *subject, *v;
    gw_route_kind kind;
    gw_req *r;
    int is_post;

    r = xmalloc(sizeof *r + ulen + 1);
    memset(r, 0, sizeof *r);
    memcpy(r->url, url, ulen + 1);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->gw = gw;
    r->conn = conn;
    r->start_us = http_now_us();
    r->body = r->inline_body;
    r->cap = sizeof r->inline_body;
    r->timeout_ms = gw->cfg.timeout_ms;
    r->state = REQ_BODY;
    atomic_fetch_add_explicit(&gw->in_flight, 1, memory_order_relaxed);
    *con_cls = r;
    nrpc_trace_begin(&r->trace,
                   MHD_lookup_connection_value(conn, MHD_HEADER_KIND, NRPC_HDR_TRACEPARENT),
                   MHD_lookup_connection_value(conn, MHD_HEADER_KIND, NRPC_HDR_REQUEST_ID));

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
    if (!is_post && gw_front_match(&gw->cfg, url, method)) {
        r->state = REQ_FRONT;
        return MHD_YES;
    }
    kind = gw_route_match(url, &subject, &slen);
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

    v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "timeout");
    if (v == NULL)
        v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Timeout");
    if (v != NULL && gw_parse_timeout(v, GW_MAX_TIMEOUT_MS, &r->timeout_ms) != 0)
        return http_reject(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", NULL,
                           "timeout must be a number of seconds > 0, got '%.64s'", v);

    v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v != NULL) {
        char *end = NULL;
        unsigned long long cl;

        errno = 0;
        cl = strtoull(v, &end, 10);
        if (errno == 0 && end != v && *end == '\0') {
            /* Too large: answered at once, so the body is never read (MHD
             * then closes the connection). */
            if (cl > gw->cfg.max_body)
                return http_send_error(r, conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", NULL,
                                       "request body of %llu bytes exceeds the limit of %zu", cl,
                                       gw->cfg.max_body);
            /* Known size: one buffer of the right size instead of doubling. */
            if (cl > r->cap) {
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

    if (r == NULL)
        return http_begin(cls, conn, url, method, con_cls);
    switch (r->state) {
    case REQ_BODY:
        if (*upload_data_size > 0) {
            http_body_append(r, upload_data, *upload_data_size);
            *upload_data_size = 0;
            /* A chunked body far past the limit: stop reading, drop it. */
            return r->discarded > r->gw->cfg.max_body ? MHD_NO : MHD_YES;
        }
        if (r->too_large)
            return http_send_error(r, conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", NULL,
                                   "request body exceeds the limit of %zu bytes",
                                   r->gw->cfg.max_body);
        return http_forward(r, conn);
    case REQ_REJECT:
    case REQ_HEALTH:
    case REQ_PAGE:
    case REQ_FRONT:
        if (*upload_data_size > 0) {
            /* Not ours to read; bounded so a rejected endless chunked
             * upload cannot hold the connection forever. */
            r->discarded += *upload_data_size;
            *upload_data_size = 0;
            return r->discarded > r->gw->cfg.max_body ? MHD_NO : MHD_YES;
        }
        if (r->state == REQ_HEALTH)
            return http_send_health(r, conn);
        if (r->state == REQ_PAGE)
            return http_page(r, conn);
        if (r->state == REQ_FRONT) {
            r->state = REQ_DONE;
            return (enum MHD_Result)gw_front_respond(r->gw->ws, &r->gw->cfg, conn, r->url,
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
    gw_server *gw = cls;
    gw_req *r = *con_cls;

    if (r == NULL)
        return;
    http_count(r);
    if (gw->cfg.access_log) {
        /* Milliseconds with two decimals, in integers (cheaper than %.2f). */
        long long cs = (http_now_us() - r->start_us + 5) / 10;
        if (cs < 0)
            cs = 0;
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            nrpc_log_ids(NRPC_LOG_INFO, r->trace.trace_id, r->trace.request_id,
                         "%s %s %d %lld.%02lld ms", r->method, r->url, r->status, cs / 100,
                         cs % 100);
        else
            nrpc_log_ids(NRPC_LOG_INFO, r->trace.trace_id, r->trace.request_id,
                         "%s %s %d %lld.%02lld ms (connection ended early, reason %d)", r->method,
                         r->url, r->status, cs / 100, cs % 100, (int)toe);
    }
    if (r->body != r->inline_body)
        free(r->body);
    free(r->reply);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub_explicit(&gw->in_flight, 1, memory_order_relaxed);
}

/* MHD's own error messages go to our log. */
static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[1024];
    size_t n;

    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    nrpc_log(NRPC_LOG_WARN, "http: %s", line);
}

/* ---------------------------------------------------------------------------
 * Life cycle.
 */

nrpc_status
gw_server_start(gw_server **out, const gw_config *cfg, nrpc_client *client)
{
    struct addrinfo hints = {0}, *ai = NULL;
    struct sockaddr_storage addr;
    char port[16];
    unsigned flags;
    gw_server *gw;
    int rc;

    gw = calloc(1, sizeof *gw);
    if (gw == NULL)
        return NRPC_ERR_NOMEM;
    gw->cfg = *cfg;
    snprintf(gw->host, sizeof gw->host, "%s", cfg->host ? cfg->host : "127.0.0.1");
    gw->cfg.host = gw->host;
    gw->client = client;
    pthread_rwlock_init(&gw->client_lock, NULL);
    gw->listen_fd = MHD_INVALID_SOCKET;
    snprintf(gw->docs_dir, sizeof gw->docs_dir, "%s", cfg->docs_dir ? cfg->docs_dir : "");
    gw->metrics = gw_metrics_new();
    if (gw->metrics == NULL || gw_catalog_start(&gw->catalog, client) != NRPC_OK) {
        gw_metrics_free(gw->metrics);
        pthread_rwlock_destroy(&gw->client_lock);
        free(gw);
        return NRPC_ERR_NOMEM;
    }

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%u", cfg->port);
    rc = getaddrinfo(gw->host, port, &hints, &ai);
    if (rc != 0 || ai == NULL || ai->ai_addrlen > sizeof addr) {
        nrpc_log(NRPC_LOG_ERROR, "GATEWAY_HOST=%s: %s", gw->host,
                 rc ? gai_strerror(rc) : "no address");
        if (ai)
            freeaddrinfo(ai);
        gw_catalog_free(gw->catalog);
        gw_metrics_free(gw->metrics);
        pthread_rwlock_destroy(&gw->client_lock);
        free(gw);
        return NRPC_ERR_INVALID_ARG;
    }
    memset(&addr, 0, sizeof addr);
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
            MHD_ALLOW_UPGRADE;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    freeaddrinfo(ai);
    /* Before the daemon: an upgrade may come with the first request. */
    if (gw_ws_start(&gw->ws, &gw->cfg, client) != NRPC_OK)
        nrpc_log(NRPC_LOG_WARN, "websocket: the loop did not start; /websocket answers 503");

    gw->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, http_on_request, gw, MHD_OPTION_EXTERNAL_LOGGER,
        http_mhd_log, gw, /* first, so it sees everything */
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(cfg->threads > 1 ? cfg->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->conn_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)cfg->conn_timeout, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_NOTIFY_COMPLETED,
        http_on_completed, gw, MHD_OPTION_END);
    if (gw->daemon == NULL) {
        nrpc_log(NRPC_LOG_ERROR, "cannot listen on %s port %u: %s", gw->host, cfg->port,
                 strerror(errno));
        gw_ws_stop(gw->ws);
        gw_catalog_free(gw->catalog);
        gw_metrics_free(gw->metrics);
        pthread_rwlock_destroy(&gw->client_lock);
        free(gw);
        return NRPC_ERR_SYSTEM;
    }
    *out = gw;
    return NRPC_OK;
}

unsigned
gw_server_port(gw_server *gw)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(gw->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : gw->cfg.port;
}

void
gw_server_quiesce(gw_server *gw)
{
    atomic_store(&gw->draining, 1);
    if (gw->listen_fd == MHD_INVALID_SOCKET)
        gw->listen_fd = MHD_quiesce_daemon(gw->daemon);
    gw_ws_quiesce(gw->ws); /* WAMP sessions: GOODBYE, close 1001 */
}

nrpc_client *
gw_server_detach_client(gw_server *gw)
{
    nrpc_client *c;

    /* The catalog uses the client too: its last gather ends first. */
    gw_catalog_stop(gw->catalog);
    gw_ws_quiesce(gw->ws); /* and the WebSocket side drops its subscriptions */
    pthread_rwlock_wrlock(&gw->client_lock);
    c = gw->client;
    gw->client = NULL;
    pthread_rwlock_unlock(&gw->client_lock);
    return c;
}

int
gw_server_in_flight(gw_server *gw)
{
    return atomic_load(&gw->in_flight);
}

void
gw_server_stop(gw_server *gw)
{
    if (gw == NULL)
        return;
    gw_ws_stop(gw->ws); /* hands every upgraded socket back to MHD first */
    MHD_stop_daemon(gw->daemon);
    /* After quiesce the listening socket is ours; MHD's threads may use it
     * until MHD_stop_daemon returns. */
    if (gw->listen_fd != MHD_INVALID_SOCKET)
        close(gw->listen_fd);
    gw_catalog_free(gw->catalog);
    gw_metrics_free(gw->metrics);
    pthread_rwlock_destroy(&gw->client_lock);
    free(gw);
}
