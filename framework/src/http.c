/* http.c: outbound HTTP for handlers on the service's loop (natsrpc_http.h),
 * written against the public headers alone, as any extension could be.
 *
 * libcurl's multi "socket" interface tells us which sockets to watch and
 * when to wake it; a uv_poll per socket and one uv_timer do that on the
 * service's loop, so a thousand transfers cost a thousand sockets, not
 * threads. Every transfer holds its call and ends exactly once in
 * transfer_finish. */
#include "natsrpc_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>
#include <uv.h>

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE (8u << 20)
#define DEFAULT_MAX_REDIRECTS 5
#define MAX_HEADER_BYTES (64u << 10) /* response headers kept per transfer */

typedef struct transfer transfer;

struct nrpc_http {
    nrpc_service *svc;
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    nrpc_table live; /* every transfer in flight, by address, for the stop */
    int pending;
    int stopping;
    int closing; /* handles whose close callback has not run yet */
};

/* A socket libcurl asked us to watch. */
typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    nrpc_http *h;
} watched;

struct nrpc_http_response {
    long status;
    const char *body;
    size_t len;
    char *headers; /* "name: value\0name: value\0...\0" of the last response */
    size_t hlen;
};

struct transfer {
    nrpc_tnode node; /* in h->live; first */
    nrpc_http *h;
    CURL *easy;
    struct curl_slist *hdrs;
    nrpc_call *call; /* held until the callback has run */
    nrpc_http_cb cb;
    void *arg;
    char *body_out; /* copy of the request body */
    char *buf;      /* response body */
    size_t len, cap, max;
    char *hbuf; /* response headers, see nrpc_http_response */
    size_t hlen, hcap;
    int too_large;
    int64_t timeout_ms;
    char url[512]; /* for messages: what was asked for, cut */
    char err[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- responses --------------------------------------------------------- */

long
nrpc_http_status(const nrpc_http_response *r)
{
    return r ? r->status : 0;
}

const char *
nrpc_http_body(const nrpc_http_response *r, size_t *len)
{
    if (len)
        *len = r ? r->len : 0;
    return r && r->body ? r->body : "";
}

const char *
nrpc_http_header(const nrpc_http_response *r, const char *name)
{
    size_t n = name ? strlen(name) : 0, off = 0;

    if (r == NULL || r->headers == NULL || n == 0)
        return NULL;
    while (off < r->hlen) {
        const char *line = r->headers + off;
        size_t l = strlen(line);
        if (l > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
        off += l + 1;
    }
    return NULL;
}

/* ---- transfers --------------------------------------------------------- */

/* Makes room for need bytes in *buf (capacity *cap, doubling). -1 when out
 * of memory. */
static int
buf_reserve(char **buf, size_t *cap, size_t need, size_t first)
{
    size_t c = *cap ? *cap : first;
    char *bigger;

    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    if ((bigger = realloc(*buf, c)) == NULL)
        return -1;
    *buf = bigger;
    *cap = c;
    return 0;
}

static size_t
on_body(char *data, size_t size, size_t n, void *userp)
{
    transfer *t = userp;
    size_t add = size * n;

    if (t->len + add > t->max) {
        t->too_large = 1;
        return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
    }
    if (buf_reserve(&t->buf, &t->cap, t->len + add + 1, 4096) != 0)
        return 0;
    memcpy(t->buf + t->len, data, add);
    t->len += add;
    t->buf[t->len] = '\0';
    return add;
}

/* Keeps the header lines of the last response (a redirect's are dropped
 * when the next status line comes), as NUL-separated "name: value". */
static size_t
on_header(char *data, size_t size, size_t n, void *userp)
{
    transfer *t = userp;
    size_t len = size * n;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        t->hlen = 0; /* a new response starts */
        return len;
    }
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len == 0 || t->hlen + len + 1 > MAX_HEADER_BYTES)
        return size * n;
    if (buf_reserve(&t->hbuf, &t->hcap, t->hlen + len + 1, 1024) != 0)
        return 0;
    memcpy(t->hbuf + t->hlen, data, len);
    t->hbuf[t->hlen + len] = '\0';
    t->hlen += len + 1;
    return size * n;
}

static void
transfer_free(transfer *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->hdrs);
    free(t->body_out);
    free(t->buf);
    free(t->hbuf);
    free(t);
}

/* The one end of every transfer: its callback, then its reference and its
 * memory. */
static void
transfer_finish(transfer *t, int code, const char *error)
{
    nrpc_http *h = t->h;
    nrpc_call *call = t->call;
    nrpc_http_response r = {0};

    nrpc_table_remove(&h->live, &t->node); /* already out when the stop took it */
    h->pending--;
    if (t->easy)
        curl_multi_remove_handle(h->multi, t->easy);
    if (nrpc_call_answered(call) && code != NRPC_CODE_CANCELED) {
        code = NRPC_CODE_CANCELED;
        error = "the call was answered before the HTTP response came";
    }
    if (code == 0) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
        r.body = t->buf ? t->buf : "";
        r.len = t->len;
        r.headers = t->hbuf;
        r.hlen = t->hlen;
    }
    t->cb(call, code, code == 0 ? &r : NULL, code == 0 ? NULL : error, t->arg);
    nrpc_call_release(call);
    transfer_free(t);
}

/* Maps libcurl's result to the contract's codes. */
static void
transfer_done(transfer *t, CURLcode rc)
{
    char msg[CURL_ERROR_SIZE + 640];

    if (rc == CURLE_OK) {
        transfer_finish(t, 0, NULL);
        return;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(msg, sizeof msg, "no answer from %s within %lld ms", t->url,
                 (long long)t->timeout_ms);
    else if (t->too_large)
        snprintf(msg, sizeof msg, "the response of %s is larger than %zu bytes", t->url, t->max);
    else
        snprintf(msg, sizeof msg, "%s: %s", t->url, t->err[0] ? t->err : curl_easy_strerror(rc));
    transfer_finish(t, rc == CURLE_OPERATION_TIMEDOUT ? NRPC_CODE_TIMEOUT : 502, msg);
}

static void
check_done(nrpc_http *h)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        transfer *t = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        transfer_done(t, m->data.result);
    }
}

/* ---- driving libcurl from the loop ------------------------------------- */

static void
on_socket_ready(uv_poll_t *p, int status, int events)
{
    watched *w = p->data;
    nrpc_http *h = w->h;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(h->multi, w->fd, flags, &running);
    check_done(h);
}

static void
on_timer(uv_timer_t *timer)
{
    nrpc_http *h = timer->data;
    int running;

    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static void
watched_closed(uv_handle_t *handle)
{
    free(handle->data);
}

/* libcurl: start, change or stop watching socket s. */
static int
on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    nrpc_http *h = userp;
    watched *w = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (w) {
            uv_poll_stop(&w->poll);
            uv_close((uv_handle_t *)&w->poll, watched_closed);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    if (w == NULL) {
        w = calloc(1, sizeof *w);
        if (w == NULL)
            return -1;
        if (uv_poll_init_socket(h->loop, &w->poll, s) != 0) {
            free(w);
            return -1;
        }
        w->fd = s;
        w->h = h;
        w->poll.data = w;
        curl_multi_assign(h->multi, s, w);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&w->poll, events, on_socket_ready) == 0 ? 0 : -1;
}

/* libcurl: wake me in timeout_ms (-1: never). Acted on from the loop, never
 * from inside libcurl. */
static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    nrpc_http *h = userp;

    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- life -------------------------------------------------------------- */

nrpc_status
nrpc_http_start(nrpc_http **out, nrpc_service *svc)
{
    nrpc_http *h;

    *out = NULL;
    if (svc == NULL || nrpc_service_loop(svc) == NULL)
        return NRPC_ERR_INVALID_ARG;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return NRPC_ERR_SYSTEM;
    h = calloc(1, sizeof *h);
    if (h == NULL || (h->multi = curl_multi_init()) == NULL) {
        free(h);
        return NRPC_ERR_NOMEM;
    }
    h->svc = svc;
    h->loop = nrpc_service_loop(svc);
    uv_timer_init(h->loop, &h->timer);
    h->timer.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    *out = h;
    return NRPC_OK;
}

static void
http_timer_closed(uv_handle_t *handle)
{
    nrpc_http *h = handle->data;
    curl_multi_cleanup(h->multi);
    free(h);
}

void
nrpc_http_stop(nrpc_http *h)
{
    nrpc_tnode *n;

    if (h == NULL)
        return;
    h->stopping = 1;
    while ((n = nrpc_table_take_any(&h->live)) != NULL)
        transfer_finish((transfer *)n, NRPC_CODE_CANCELED, "the service is stopping");
    nrpc_table_free(&h->live);
    uv_close((uv_handle_t *)&h->timer, http_timer_closed);
}

int
nrpc_http_pending(nrpc_http *h)
{
    return h ? h->pending : 0;
}

nrpc_status
nrpc_http_request(nrpc_http *h, nrpc_call *call, const nrpc_http_req *req, nrpc_http_cb cb,
                  void *arg)
{
    transfer *t;
    const char *const *hv;
    const char *method;
    int64_t left, timeout;
    nrpc_trace tr;
    char line[NRPC_TRACEPARENT_LEN + 32];
    int ok = 1;

    if (h == NULL || call == NULL || req == NULL || req->url == NULL || cb == NULL ||
        (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0) ||
        (req->body == NULL && req->body_len > 0))
        return NRPC_ERR_INVALID_ARG;
    if (h->stopping || nrpc_call_answered(call))
        return NRPC_ERR_STATE;
    t = calloc(1, sizeof *t);
    if (t == NULL || (t->easy = curl_easy_init()) == NULL) {
        free(t);
        return NRPC_ERR_NOMEM;
    }
    t->h = h;
    t->cb = cb;
    t->arg = arg;
    t->max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    snprintf(t->url, sizeof t->url, "%s", req->url);
    timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    left = nrpc_call_time_left_ms(call);
    if (left < timeout)
        timeout = left > 1 ? left : 1; /* never wait past our own caller */
    t->timeout_ms = timeout;
    method = req->method ? req->method : req->body ? "POST" : "GET";

    /* The call's trace goes on as a child span. */
    nrpc_call_trace_hop(call, &tr);
    snprintf(line, sizeof line, "traceparent: %s", tr.traceparent);
    ok = (t->hdrs = curl_slist_append(t->hdrs, line)) != NULL;
    if (ok && nrpc_call_request_id(call)) {
        char rid[NRPC_REQUEST_ID_MAX + 32];
        snprintf(rid, sizeof rid, "X-Request-Id: %s", nrpc_call_request_id(call));
        ok = (t->hdrs = curl_slist_append(t->hdrs, rid)) != NULL;
    }
    for (hv = req->headers; ok && hv && hv[0] && hv[1]; hv += 2) {
        size_t n = strlen(hv[0]) + strlen(hv[1]) + 3;
        char *one = malloc(n);
        struct curl_slist *l;
        if (one == NULL) {
            ok = 0;
            break;
        }
        snprintf(one, n, "%s: %s", hv[0], hv[1]);
        l = curl_slist_append(t->hdrs, one);
        free(one);
        ok = l != NULL;
        if (ok)
            t->hdrs = l;
    }
    if (ok && req->body) {
        ok = (t->body_out = malloc(req->body_len ? req->body_len : 1)) != NULL;
        if (ok)
            memcpy(t->body_out, req->body, req->body_len);
    }
    if (!ok) {
        transfer_free(t);
        return NRPC_ERR_NOMEM;
    }
    curl_easy_setopt(t->easy, CURLOPT_URL, req->url);
    curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(t->easy, CURLOPT_NOBODY, 1L);
    if (req->body) {
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body_out);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->hdrs);
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, req->max_redirects < 0 ? 0L : 1L);
    curl_easy_setopt(t->easy, CURLOPT_MAXREDIRS,
                     (long)(req->max_redirects > 0 ? req->max_redirects : DEFAULT_MAX_REDIRECTS));
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, ""); /* what libcurl can decode */
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "natsrpc/" NRPC_VERSION);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->err);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    /* TLS peers are verified (libcurl's default, kept on purpose); proxies
     * come from the environment as for curl itself. */
    if (curl_multi_add_handle(h->multi, t->easy) != CURLM_OK) {
        transfer_free(t);
        return NRPC_ERR_NOMEM;
    }
    if (nrpc_table_put(&h->live, &t->node, (uint64_t)(uintptr_t)t) != 0) {
        curl_multi_remove_handle(h->multi, t->easy);
        transfer_free(t);
        return NRPC_ERR_NOMEM;
    }
    t->call = nrpc_call_hold(call);
    nrpc_call_defer(call);
    h->pending++;
    return NRPC_OK;
}
