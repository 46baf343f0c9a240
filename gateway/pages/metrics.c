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
 * Per request: one hash lookup and a few increments, with no lock: each
 * gateway loop has its own gw_metrics and is its only writer, and a render
 * (from any loop) reads every loop's counters with atomic loads and adds
 * them up. An rpc entry, once published in a slot, never moves or goes
 * away; its name never changes. The rpc label is an rpc of the catalog
 * (http.c asks gw_catalog_known): a subject no service announces in
 * $SRV.INFO counts as "other", so made-up subjects grow neither memory nor
 * the page. GW_METRICS_MAX_RPCS bounds the labels besides. Requests the
 * gateway refused for their path count as "invalid".
 */
#include "pages.h"
#include "ws/ws.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds of the latency buckets, in seconds (+Inf is implicit). */
static const double metrics_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
#define METRICS_NBOUNDS (sizeof metrics_bounds / sizeof metrics_bounds[0])

/* Slots of the open-addressing table: more than twice the entries it can
 * hold (the rpcs plus "other" and "invalid"), so probes stay short. */
/* Not nrpc_table: the /metrics page of another loop reads these slots while
 * their loop writes them, with no lock, so entries are published once into
 * fixed atomic slots (open addressing) and never move. */
#define METRICS_SLOTS 4096

/* Distinct HTTP statuses one rpc can be answered with: 200 and 400-599
 * (http.c sends nothing else for an rpc), with room to spare. */
#define METRICS_MAX_STATUSES 208

typedef atomic_uint_fast64_t metrics_counter;

typedef struct {
    char *name;
    /* statuses[i] is written before nstatuses covers it (release), so a
     * reader that loads nstatuses (acquire) sees every status it covers. */
    atomic_uint nstatuses;
    int statuses[METRICS_MAX_STATUSES];
    metrics_counter counts[METRICS_MAX_STATUSES];
    metrics_counter buckets[METRICS_NBOUNDS + 1]; /* not cumulative; last is +Inf */
    metrics_counter sum_us;
    metrics_counter count;
} metrics_rpc;

struct gw_metrics {
    _Atomic(metrics_rpc *) slots[METRICS_SLOTS];
    size_t nrpcs; /* named rpcs, not counting "other" and "invalid"; writer only */
};

gw_metrics *
gw_metrics_new(void)
{
    return calloc(1, sizeof(gw_metrics));
}

void
gw_metrics_free(gw_metrics *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < METRICS_SLOTS; i++) {
        metrics_rpc *e = atomic_load(&m->slots[i]);
        if (e) {
            free(e->name);
            free(e);
        }
    }
    free(m);
}

/* The writer adds to a counter nobody else writes: a plain load and store,
 * atomic only so that readers never see a torn value. */
static void
metrics_bump(metrics_counter *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static uint64_t
metrics_read(metrics_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* The entry for name (len bytes), created if there is room. Writer only.
 * NULL when out of memory or when the table of names is full and create is
 * 0. */
static metrics_rpc *
metrics_find(gw_metrics *m, const char *name, size_t len, int create)
{
    size_t i = (size_t)nrpc_hash_bytes(name, len) & (METRICS_SLOTS - 1);
    metrics_rpc *e;

    for (; (e = atomic_load_explicit(&m->slots[i], memory_order_relaxed)) != NULL;
         i = (i + 1) & (METRICS_SLOTS - 1)) {
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
    atomic_store_explicit(&m->slots[i], e, memory_order_release); /* published whole */
    return e;
}

void
gw_metrics_observe(gw_metrics *m, const char *rpc, size_t len, int status, double seconds)
{
    metrics_rpc *e;
    unsigned i, n;

    if (m == NULL)
        return;
    if (rpc == NULL) {
        rpc = "invalid";
        len = 7;
    }
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
    if (e == NULL)
        return; /* out of memory: a metric lost, the request is fine */
    n = atomic_load_explicit(&e->nstatuses, memory_order_relaxed);
    for (i = 0; i < n && e->statuses[i] != status; i++)
        ;
    if (i == n && n < METRICS_MAX_STATUSES) {
        e->statuses[n] = status;
        atomic_store_explicit(&e->nstatuses, n + 1, memory_order_release);
    }
    if (i < METRICS_MAX_STATUSES)
        metrics_bump(&e->counts[i], 1);
    for (i = 0; i < METRICS_NBOUNDS && seconds > metrics_bounds[i]; i++)
        ;
    metrics_bump(&e->buckets[i], 1);
    metrics_bump(&e->sum_us, (uint64_t)(seconds * 1e6 + 0.5));
    metrics_bump(&e->count, 1);
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

/* One rpc over every loop: the sum of its entries. */
typedef struct {
    const char *name;
    int statuses[METRICS_MAX_STATUSES];
    uint64_t counts[METRICS_MAX_STATUSES];
    unsigned nstatuses;
    uint64_t buckets[METRICS_NBOUNDS + 1];
    uint64_t sum_us, count;
} metrics_sum;

static void
metrics_add(metrics_sum *t, metrics_rpc *e)
{
    unsigned n = atomic_load_explicit(&e->nstatuses, memory_order_acquire), i, k;

    t->name = e->name;
    for (i = 0; i < n; i++) {
        for (k = 0; k < t->nstatuses && t->statuses[k] != e->statuses[i]; k++)
            ;
        if (k == t->nstatuses) {
            /* Sorted as it goes: the text lists statuses in order. */
            while (k > 0 && t->statuses[k - 1] > e->statuses[i]) {
                t->statuses[k] = t->statuses[k - 1];
                t->counts[k] = t->counts[k - 1];
                k--;
            }
            t->statuses[k] = e->statuses[i];
            t->counts[k] = 0;
            t->nstatuses++;
        }
        t->counts[k] += metrics_read(&e->counts[i]);
    }
    for (i = 0; i <= METRICS_NBOUNDS; i++)
        t->buckets[i] += metrics_read(&e->buckets[i]);
    t->sum_us += metrics_read(&e->sum_us);
    t->count += metrics_read(&e->count);
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
gw_metrics_render(gw_metrics *const *ms, size_t nm, const gw_metrics_gauges *g, size_t *len)
{
    metrics_buf b = {0};
    metrics_rpc **list = NULL;
    metrics_sum *sum = NULL;
    size_t n = 0, i, j, k, cap = 0;
    gw_ws_stats ws;
    int have_ws = 0;

    b.cap = 4096;
    b.p = malloc(b.cap);
    if (b.p == NULL)
        return NULL;
    b.p[0] = '\0';

    /* Every loop's entries, sorted by name: one rpc's entries are then
     * next to each other, and each group is summed into one. */
    for (j = 0; j < nm; j++) {
        for (i = 0; ms[j] && i < METRICS_SLOTS; i++) {
            metrics_rpc *e = atomic_load_explicit(&ms[j]->slots[i], memory_order_acquire);
            if (e == NULL)
                continue;
            if (n == cap) {
                metrics_rpc **l = realloc(list, (cap = cap ? cap * 2 : 64) * sizeof *l);
                if (l == NULL) {
                    b.failed = 1;
                    break;
                }
                list = l;
            }
            list[n++] = e;
        }
    }
    if (n > 0)
        qsort(list, n, sizeof *list, metrics_by_name);
    sum = malloc(sizeof *sum);
    if (sum == NULL)
        b.failed = 1;

    metrics_printf(&b, "# HELP natsrpc_gateway_requests_total HTTP requests for rpcs, by rpc "
                       "and HTTP status (rpc=\"invalid\": refused paths, \"other\": a subject "
                       "no service announces).\n"
                       "# TYPE natsrpc_gateway_requests_total counter\n");
    for (i = 0; sum && i < n; i = j) {
        memset(sum, 0, sizeof *sum);
        for (j = i; j < n && strcmp(list[j]->name, list[i]->name) == 0; j++)
            metrics_add(sum, list[j]);
        for (k = 0; k < sum->nstatuses; k++) {
            metrics_printf(&b, "natsrpc_gateway_requests_total{rpc=\"");
            metrics_label(&b, sum->name);
            metrics_printf(&b, "\",status=\"%d\"} %llu\n", sum->statuses[k],
                           (unsigned long long)sum->counts[k]);
        }
    }
    metrics_printf(&b, "# HELP natsrpc_gateway_request_duration_seconds Time from the request "
                       "to its answer, by rpc.\n"
                       "# TYPE natsrpc_gateway_request_duration_seconds histogram\n");
    for (i = 0; sum && i < n; i = j) {
        uint64_t cum = 0;
        memset(sum, 0, sizeof *sum);
        for (j = i; j < n && strcmp(list[j]->name, list[i]->name) == 0; j++)
            metrics_add(sum, list[j]);
        for (k = 0; k <= METRICS_NBOUNDS; k++) {
            cum += sum->buckets[k];
            metrics_printf(&b, "natsrpc_gateway_request_duration_seconds_bucket{rpc=\"");
            metrics_label(&b, sum->name);
            if (k < METRICS_NBOUNDS)
                metrics_printf(&b, "\",le=\"%g\"} %llu\n", metrics_bounds[k],
                               (unsigned long long)cum);
            else
                metrics_printf(&b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        metrics_printf(&b, "natsrpc_gateway_request_duration_seconds_sum{rpc=\"");
        metrics_label(&b, sum->name);
        metrics_printf(&b, "\"} %.9g\n", (double)sum->sum_us / 1e6);
        metrics_printf(&b, "natsrpc_gateway_request_duration_seconds_count{rpc=\"");
        metrics_label(&b, sum->name);
        metrics_printf(&b, "\"} %llu\n", (unsigned long long)sum->count);
    }
    free(sum);
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
