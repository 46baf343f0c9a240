/*
 * metrics.c: GET /metrics, the Prometheus text format (version 0.0.4).
 *
 *   natsrpc_gateway_requests_total{rpc,status}          counter
 *   natsrpc_gateway_request_duration_seconds{rpc}       histogram
 *   natsrpc_gateway_requests_in_flight                  gauge
 *   natsrpc_gateway_nats_connected                      gauge (1/0)
 *   natsrpc_gateway_nats_reconnects_total               counter
 *   natsrpc_gateway_websocket_*, natsrpc_gateway_wamp_*  from gw_ws_stats_read
 *
 * Per request: one hash lookup and a few increments under one mutex. The
 * rpc label takes at most GW_METRICS_MAX_RPCS distinct values; later rpcs
 * are counted as "other", so random paths cannot grow memory. Requests the
 * gateway refused for their path count as "invalid".
 */
#include "pages.h"
#include "ws/ws.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds of the latency buckets, in seconds (+Inf is implicit). */
static const double metrics_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
#define METRICS_NBOUNDS (sizeof metrics_bounds / sizeof metrics_bounds[0])

/* Slots of the open-addressing table: more than twice the entries it can
 * hold (the rpcs plus "other" and "invalid"), so probes stay short. */
#define METRICS_SLOTS 4096

typedef struct {
    int status;
    uint64_t n;
} metrics_status;

typedef struct {
    char *name;
    metrics_status *statuses; /* one per HTTP status seen (at most ~200) */
    size_t nstatuses;
    uint64_t buckets[METRICS_NBOUNDS + 1]; /* not cumulative; last is +Inf */
    double sum;
    uint64_t count;
} metrics_rpc;

struct gw_metrics {
    pthread_mutex_t mu;
    metrics_rpc *slots[METRICS_SLOTS];
    size_t nrpcs; /* named rpcs, not counting "other" and "invalid" */
};

gw_metrics *
gw_metrics_new(void)
{
    gw_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void
gw_metrics_free(gw_metrics *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < METRICS_SLOTS; i++) {
        if (m->slots[i]) {
            free(m->slots[i]->name);
            free(m->slots[i]->statuses);
            free(m->slots[i]);
        }
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static uint64_t
metrics_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The entry for name (len bytes), created if there is room. Locked. NULL
 * when out of memory or when the table of names is full and create is 0. */
static metrics_rpc *
metrics_find(gw_metrics *m, const char *name, size_t len, int create)
{
    size_t i = (size_t)metrics_hash(name, len) & (METRICS_SLOTS - 1);
    metrics_rpc *e;

    for (; m->slots[i]; i = (i + 1) & (METRICS_SLOTS - 1)) {
        e = m->slots[i];
        if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    if (!create)
        return NULL;
    e = calloc(1, sizeof *e);
    if (e == NULL || (e->name = malloc(len + 1)) == NULL) {
        free(e);
        return NULL;
    }
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    m->slots[i] = e;
    return e;
}

void
gw_metrics_observe(gw_metrics *m, const char *rpc, size_t len, int status, double seconds)
{
    metrics_rpc *e;
    size_t i;

    if (m == NULL)
        return;
    if (rpc == NULL) {
        rpc = "invalid";
        len = 7;
    }
    pthread_mutex_lock(&m->mu);
    e = metrics_find(m, rpc, len, 0);
    if (e == NULL) {
        int special = (len == 7 && memcmp(rpc, "invalid", 7) == 0) ||
                      (len == 5 && memcmp(rpc, "other", 5) == 0);
        if (special || m->nrpcs < GW_METRICS_MAX_RPCS) {
            e = metrics_find(m, rpc, len, 1);
            if (e && !special)
                m->nrpcs++;
        } else {
            e = metrics_find(m, "other", 5, 1);
        }
    }
    if (e == NULL) {
        pthread_mutex_unlock(&m->mu);
        return; /* out of memory: a metric lost, the request is fine */
    }
    for (i = 0; i < e->nstatuses && e->statuses[i].status != status; i++)
        ;
    if (i == e->nstatuses) {
        metrics_status *s = realloc(e->statuses, (e->nstatuses + 1) * sizeof *s);
        if (s != NULL) {
            e->statuses = s;
            s[e->nstatuses].status = status;
            s[e->nstatuses].n = 0;
            e->nstatuses++;
        }
    }
    if (i < e->nstatuses)
        e->statuses[i].n++;
    for (i = 0; i < METRICS_NBOUNDS && seconds > metrics_bounds[i]; i++)
        ;
    e->buckets[i]++;
    e->sum += seconds;
    e->count++;
    pthread_mutex_unlock(&m->mu);
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} metrics_buf;

static void metrics_printf(metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metrics_printf(metrics_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *p = realloc(b->p, cap);
            if (p == NULL) {
                b->failed = 1;
                return;
            }
            b->p = p;
            b->cap = cap;
        }
    }
}

/* A label value, escaped as the text format asks (\\, \" and \n). rpc
 * labels are rpc subjects, so this is defence in depth. */
static void
metrics_label(metrics_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            metrics_printf(b, "\\%c", *s);
        else if (*s == '\n')
            metrics_printf(b, "\\n");
        else
            metrics_printf(b, "%c", *s);
    }
}

static int
metrics_by_name(const void *a, const void *b)
{
    return strcmp((*(metrics_rpc *const *)a)->name, (*(metrics_rpc *const *)b)->name);
}

static int
metrics_by_status(const void *a, const void *b)
{
    return ((const metrics_status *)a)->status - ((const metrics_status *)b)->status;
}

/* The WebSocket side's numbers, from ws.c. Weak so that the unit tests can
 * link this file without the WebSocket code: the gauges are then left out. */
#pragma weak gw_ws_stats_read

static void
gw_metrics_ws_hook(int *have, gw_ws_stats *st)
{
    memset(st, 0, sizeof *st);
    *have = 0;
    if (gw_ws_stats_read != NULL) {
        gw_ws_stats_read(st);
        *have = 1;
    }
}

char *
gw_metrics_render(gw_metrics *m, const gw_metrics_gauges *g, size_t *len)
{
    metrics_buf b = {0};
    metrics_rpc **list = NULL;
    size_t n = 0, i, j, k;
    gw_ws_stats ws;
    int have_ws = 0;

    b.cap = 4096;
    b.p = malloc(b.cap);
    if (b.p == NULL)
        return NULL;
    b.p[0] = '\0';

    pthread_mutex_lock(&m->mu);
    list = malloc(sizeof *list * (m->nrpcs + 2));
    for (i = 0; list && i < METRICS_SLOTS; i++)
        if (m->slots[i])
            list[n++] = m->slots[i];
    if (list)
        qsort(list, n, sizeof *list, metrics_by_name);

    metrics_printf(&b, "# HELP natsrpc_gateway_requests_total HTTP requests for rpcs, by rpc "
                       "and HTTP status (rpc=\"invalid\": refused paths, \"other\": past the "
                       "label limit).\n"
                       "# TYPE natsrpc_gateway_requests_total counter\n");
    for (i = 0; i < n; i++) {
        metrics_rpc *e = list[i];
        qsort(e->statuses, e->nstatuses, sizeof *e->statuses, metrics_by_status);
        for (j = 0; j < e->nstatuses; j++) {
            metrics_printf(&b, "natsrpc_gateway_requests_total{rpc=\"");
            metrics_label(&b, e->name);
            metrics_printf(&b, "\",status=\"%d\"} %llu\n", e->statuses[j].status,
                           (unsigned long long)e->statuses[j].n);
        }
    }
    metrics_printf(&b, "# HELP natsrpc_gateway_request_duration_seconds Time from the request "
                       "to its answer, by rpc.\n"
                       "# TYPE natsrpc_gateway_request_duration_seconds histogram\n");
    for (i = 0; i < n; i++) {
        metrics_rpc *e = list[i];
        uint64_t cum = 0;
        for (k = 0; k <= METRICS_NBOUNDS; k++) {
            cum += e->buckets[k];
            metrics_printf(&b, "natsrpc_gateway_request_duration_seconds_bucket{rpc=\"");
            metrics_label(&b, e->name);
            if (k < METRICS_NBOUNDS)
                metrics_printf(&b, "\",le=\"%g\"} %llu\n", metrics_bounds[k],
                               (unsigned long long)cum);
            else
                metrics_printf(&b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        metrics_printf(&b, "natsrpc_gateway_request_duration_seconds_sum{rpc=\"");
        metrics_label(&b, e->name);
        metrics_printf(&b, "\"} %.9g\n", e->sum);
        metrics_printf(&b, "natsrpc_gateway_request_duration_seconds_count{rpc=\"");
        metrics_label(&b, e->name);
        metrics_printf(&b, "\"} %llu\n", (unsigned long long)e->count);
    }
    pthread_mutex_unlock(&m->mu);
    free(list);

    metrics_printf(&b,
                   "# HELP natsrpc_gateway_requests_in_flight HTTP requests received and not "
                   "yet answered.\n"
                   "# TYPE natsrpc_gateway_requests_in_flight gauge\n"
                   "natsrpc_gateway_requests_in_flight %d\n"
                   "# HELP natsrpc_gateway_nats_connected 1 while the gateway is connected to "
                   "NATS, else 0.\n"
                   "# TYPE natsrpc_gateway_nats_connected gauge\n"
                   "natsrpc_gateway_nats_connected %d\n"
                   "# HELP natsrpc_gateway_nats_reconnects_total Times the NATS connection was "
                   "re-established.\n"
                   "# TYPE natsrpc_gateway_nats_reconnects_total counter\n"
                   "natsrpc_gateway_nats_reconnects_total %llu\n",
                   g->in_flight, g->nats_connected ? 1 : 0, (unsigned long long)g->nats_reconnects);

    gw_metrics_ws_hook(&have_ws, &ws);
    if (have_ws)
        metrics_printf(&b,
                       "# HELP natsrpc_gateway_websocket_connections Open WebSocket "
                       "connections.\n"
                       "# TYPE natsrpc_gateway_websocket_connections gauge\n"
                       "natsrpc_gateway_websocket_connections %lld\n"
                       "# HELP natsrpc_gateway_websocket_connections_total WebSocket "
                       "connections accepted.\n"
                       "# TYPE natsrpc_gateway_websocket_connections_total counter\n"
                       "natsrpc_gateway_websocket_connections_total %lld\n"
                       "# HELP natsrpc_gateway_wamp_sessions Established WAMP sessions.\n"
                       "# TYPE natsrpc_gateway_wamp_sessions gauge\n"
                       "natsrpc_gateway_wamp_sessions %lld\n"
                       "# HELP natsrpc_gateway_wamp_subscriptions WAMP subscriptions "
                       "(session, topic).\n"
                       "# TYPE natsrpc_gateway_wamp_subscriptions gauge\n"
                       "natsrpc_gateway_wamp_subscriptions %lld\n"
                       "# HELP natsrpc_gateway_wamp_topics NATS subscriptions held for WAMP "
                       "topics.\n"
                       "# TYPE natsrpc_gateway_wamp_topics gauge\n"
                       "natsrpc_gateway_wamp_topics %lld\n",
                       ws.sockets_open, ws.sockets_total, ws.sessions, ws.subscriptions, ws.topics);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
