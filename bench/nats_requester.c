/*
 * nats_requester: closed-loop request/reply load on one NATS subject.
 *
 *   nats_requester [-s URL] [-subj SUBJECT] [-n INFLIGHT] [-d SECONDS]
 *                  [-w WARMUP_SECONDS] [-body JSON]
 *
 * Keeps INFLIGHT requests outstanding for SECONDS: one wildcard
 * subscription "<inbox>.*" receives every reply, request slot i uses the
 * reply subject "<inbox>.i", and each reply immediately sends the next
 * request of its slot (like wrk's keep-alive connections). Publishes go out
 * at once (SendAsap), so no 1 ms flusher delay is measured.
 *
 * Before timing, one plain request must come back with the expected reply
 * ([["Hello, Bob Ross"], {}] ignoring whitespace, for the default body).
 * Later replies that differ from that first one count as errors, and so do
 * failed publishes and requests still unanswered at the end.
 *
 * Prints one line:
 *   RESULT inflight=N requests=N seconds=S rps=R p50_ms=X p99_ms=Y errors=E
 *
 * Build (bench/run does this):
 *   cc -O2 bench/nats_requester.c -o build/bench/nats_requester \
 *      $(pkg-config --cflags --libs libnats)
 */
#include <nats/nats.h>

#include "internal.h" /* NATS_USER, NATS_CA..., NATS_INBOX_PREFIX as natsrpc */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_BODY  "[[\"Bob\"], {\"last_name\": \"Ross\"}]"
#define DEFAULT_REPLY "[[\"Hello, Bob Ross\"], {}]"

/* State shared with the reply callback. The subscription has one delivery
 * thread, so the callback never runs concurrently with itself; the main
 * thread only touches the atomics and, before the first reply, sent_at[]. */
static const char  *g_subj;
static const char  *g_body;
static int          g_body_len;
static char        *g_expect;        /* first reply, as received */
static int          g_expect_len;
static int          g_slots;
static char       **g_reply_subj;    /* "<inbox>.<i>" per slot */
static uint64_t    *g_sent_at;       /* send time of the slot's request */
static uint64_t    *g_lat;           /* latencies (ns) inside the window */
static size_t       g_lat_n, g_lat_cap;
static atomic_bool  g_measuring, g_stopping;
static atomic_int   g_inflight;
static atomic_ullong g_errors;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

    nanosleep(&ts, NULL);
}

static void
lat_push(uint64_t ns)
{
    if (g_lat_n == g_lat_cap) {
        size_t    cap = g_lat_cap ? g_lat_cap * 2 : (size_t)1 << 18;
        uint64_t *v   = realloc(g_lat, cap * sizeof(*v));

        if (v == NULL) {
            fprintf(stderr, "nats_requester: out of memory\n");
            exit(2);
        }
        g_lat     = v;
        g_lat_cap = cap;
    }
    g_lat[g_lat_n++] = ns;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies, in milliseconds. */
static double
pct_ms(double p)
{
    size_t i;

    if (g_lat_n == 0)
        return 0.0;
    i = (size_t)(p / 100.0 * (double)g_lat_n);
    if (i >= g_lat_n)
        i = g_lat_n - 1;
    return (double)g_lat[i] / 1e6;
}

/* Compares ignoring whitespace, the way the contract states replies. */
static bool
same_json_text(const char *a, int alen, const char *b, int blen)
{
    int i = 0, j = 0;

    for (;;) {
        while (i < alen && strchr(" \t\r\n", a[i]) != NULL)
            i++;
        while (j < blen && strchr(" \t\r\n", b[j]) != NULL)
            j++;
        if (i == alen || j == blen)
            return i == alen && j == blen;
        if (a[i++] != b[j++])
            return false;
    }
}

static void
on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    uint64_t    t    = now_ns();
    const char *subj = natsMsg_GetSubject(msg);
    const char *dot  = strrchr(subj, '.');
    int         slot = dot != NULL ? atoi(dot + 1) : -1;

    (void)sub;
    (void)closure;
    if (slot < 0 || slot >= g_slots) {
        natsMsg_Destroy(msg);
        return;
    }
    /* A "no responders" status or a wrong body is an error, not a reply. */
    if (natsMsg_GetDataLength(msg) != g_expect_len ||
        memcmp(natsMsg_GetData(msg), g_expect, (size_t)g_expect_len) != 0)
        atomic_fetch_add(&g_errors, 1);
    else if (atomic_load_explicit(&g_measuring, memory_order_relaxed))
        lat_push(t - g_sent_at[slot]);
    natsMsg_Destroy(msg);

    if (atomic_load_explicit(&g_stopping, memory_order_relaxed)) {
        atomic_fetch_sub(&g_inflight, 1);
        return;
    }
    g_sent_at[slot] = now_ns();
    if (natsConnection_PublishRequest(nc, g_subj, g_reply_subj[slot], g_body, g_body_len) != NATS_OK) {
        atomic_fetch_add(&g_errors, 1);
        atomic_fetch_sub(&g_inflight, 1);
    }
}

static void
die(const char *what, natsStatus s)
{
    fprintf(stderr, "nats_requester: %s: %s\n", what, natsStatus_GetText(s));
    nats_PrintLastErrorStack(stderr);
    exit(1);
}

static void
usage(void)
{
    fprintf(stderr, "usage: nats_requester [-s URL] [-subj SUBJECT] [-n INFLIGHT] "
                    "[-d SECONDS] [-w WARMUP] [-body JSON]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char       *url = "nats://127.0.0.1:4222";
    double            duration = 10, warmup = 1;
    natsOptions      *opts = NULL;
    natsConnection   *nc = NULL;
    natsSubscription *sub = NULL;
    char              inbox[NRPC_INBOX_SIZE];
    natsMsg          *rep = NULL;
    natsStatus        s;
    char              wildcard[256];
    uint64_t          t0, t1, lost;
    double            seconds;

    g_subj  = "greeting_service.hello";
    g_body  = DEFAULT_BODY;
    g_slots = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "-s") == 0)
            url = argv[++i];
        else if (strcmp(argv[i], "-subj") == 0)
            g_subj = argv[++i];
        else if (strcmp(argv[i], "-n") == 0)
            g_slots = atoi(argv[++i]);
        else if (strcmp(argv[i], "-d") == 0)
            duration = atof(argv[++i]);
        else if (strcmp(argv[i], "-w") == 0)
            warmup = atof(argv[++i]);
        else if (strcmp(argv[i], "-body") == 0)
            g_body = argv[++i];
        else
            usage();
    }
    if (g_slots < 1 || duration <= 0 || warmup < 0)
        usage();
    g_body_len = (int)strlen(g_body);

    if ((s = natsOptions_Create(&opts)) != NATS_OK)
        die("options", s);
    natsOptions_SetURL(opts, url);
    {
        /* The same NATS credentials, TLS settings and inbox prefix as
         * every natsrpc process, and nothing else of natsrpc. */
        char what[512], err[512];
        if (nrpc__nats_creds_apply(opts, url, what, sizeof what, err, sizeof err) != 0 ||
            nrpc__inbox_apply(opts, err, sizeof err) != 0) {
            fprintf(stderr, "nats_requester: %s\n", err);
            return 2;
        }
    }
    natsOptions_SetSendAsap(opts, true);
    natsOptions_SetName(opts, "natsrpc-bench-requester");
    if ((s = natsConnection_Connect(&nc, opts)) != NATS_OK)
        die("connect", s);

    /* The check request; its reply is what every later reply must equal. */
    if ((s = natsConnection_Request(&rep, nc, g_subj, g_body, g_body_len, 5000)) != NATS_OK)
        die("check request", s);
    g_expect_len = natsMsg_GetDataLength(rep);
    g_expect     = malloc((size_t)g_expect_len + 1);
    memcpy(g_expect, natsMsg_GetData(rep), (size_t)g_expect_len);
    g_expect[g_expect_len] = '\0';
    natsMsg_Destroy(rep);
    if (strcmp(g_body, DEFAULT_BODY) == 0 &&
        !same_json_text(g_expect, g_expect_len, DEFAULT_REPLY, (int)strlen(DEFAULT_REPLY))) {
        fprintf(stderr, "nats_requester: unexpected reply %s (want %s)\n", g_expect, DEFAULT_REPLY);
        return 1;
    }
    printf("check ok reply=%s\n", g_expect);

    if (nrpc_inbox_new(inbox, sizeof inbox) != NRPC_OK)
        die("inbox", NATS_INVALID_ARG);
    g_reply_subj = calloc((size_t)g_slots, sizeof(*g_reply_subj));
    g_sent_at    = calloc((size_t)g_slots, sizeof(*g_sent_at));
    for (int i = 0; i < g_slots; i++) {
        size_t len = strlen(inbox) + 16;

        g_reply_subj[i] = malloc(len);
        snprintf(g_reply_subj[i], len, "%s.%d", inbox, i);
    }
    snprintf(wildcard, sizeof(wildcard), "%s.*", inbox);
    if ((s = natsConnection_Subscribe(&sub, nc, wildcard, on_reply, NULL)) != NATS_OK)
        die("subscribe", s);
    natsSubscription_SetPendingLimits(sub, -1, -1);
    /* The server must know the subscription before the first reply arrives. */
    if ((s = natsConnection_Flush(nc)) != NATS_OK)
        die("flush", s);

    atomic_store(&g_inflight, g_slots);
    for (int i = 0; i < g_slots; i++) {
        g_sent_at[i] = now_ns();
        if ((s = natsConnection_PublishRequest(nc, g_subj, g_reply_subj[i], g_body, g_body_len)) != NATS_OK)
            die("publish", s);
    }

    sleep_s(warmup);
    t0 = now_ns();
    atomic_store(&g_measuring, true);
    sleep_s(duration);
    atomic_store(&g_measuring, false);
    t1 = now_ns();

    /* Let the outstanding requests come back (up to 3 s); what does not is lost. */
    atomic_store(&g_stopping, true);
    for (int k = 0; k < 300 && atomic_load(&g_inflight) > 0; k++)
        sleep_s(0.01);
    lost = (uint64_t)(atomic_load(&g_inflight) > 0 ? atomic_load(&g_inflight) : 0);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);

    qsort(g_lat, g_lat_n, sizeof(*g_lat), cmp_u64);
    seconds = (double)(t1 - t0) / 1e9;
    printf("RESULT inflight=%d requests=%zu seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%llu\n",
           g_slots, g_lat_n, seconds, (double)g_lat_n / seconds, pct_ms(50), pct_ms(99),
           (unsigned long long)(atomic_load(&g_errors) + lost));
    fflush(stdout);

    for (int i = 0; i < g_slots; i++)
        free(g_reply_subj[i]);
    free(g_reply_subj);
    free(g_sent_at);
    free(g_lat);
    free(g_expect);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return 0;
}
