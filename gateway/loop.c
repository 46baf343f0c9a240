/*
 * loop.c: the gateway loops. Each is one thread running one libuv loop,
 * which drives everything of that loop (see gateway.h):
 *
 *   bridge/http.c  its MHD daemon, on its own SO_REUSEPORT listening socket
 *   its client     nrpc_client in loop mode: its own NATS connection
 *   ws/ws.c        the WebSockets MHD upgrades on this loop
 *   pages/         its catalog refresh and its metrics
 *
 * The main thread talks to a loop only to start it and to step it through
 * the drain (quiesce, release, stop): it posts a step through a uv_async and
 * waits until the loop has run it. That path is for shutdown only; requests
 * never leave their loop.
 *
 * Listening sockets are opened by the main thread before any loop starts,
 * so a port in use or a bad GATEWAY_HOST fails the start at once, and a
 * port of 0 is resolved once for every loop.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "auth/gate.h"
#include "bridge/bridge.h"
#include "pages/pages.h"
#include "ws/ws.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Connections the kernel may queue per listening socket before MHD accepts. */
#define LOOP_BACKLOG 1024
/* How long gw_gateway_stop waits for a loop's thread to end. */
#define LOOP_JOIN_MS 5000

typedef void (*loop_step)(gw_loop *l);

/* A loop and what only loop.c touches. */
typedef struct {
    gw_loop pub; /* first: a gw_loop * is a loop_slot * */
    pthread_t thread;
    int thread_started;
    int listen_fd; /* handed to MHD at start */
    int ipv6;
    uv_async_t step_async;
    uv_prepare_t log_flush; /* the loop's log lines, before it polls */
    /* step: posted by the main thread, run on the loop; under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    loop_step step;
    int step_done;
    int ready; /* 1 serving, -1 failed at start; under mu */
    int ended; /* the thread has left uv_run; under mu */
} loop_slot;

struct gw_gateway {
    gw_config cfg;
    char host[256], docs_dir[1024];
    unsigned port;
    unsigned n;
    loop_slot *loops;
    gw_metrics **metrics; /* every loop's, for /metrics */
    gw_catalog_docs docs; /* the catalog's documents, shared by the loops */
    atomic_int closing;   /* gw_gateway_release has begun */
};

/* ---------------------------------------------------------------------------
 * What every loop can read of the others.
 */

void
gw_gateway_health(gw_loop *l, gw_health *out)
{
    gw_gateway *gw = l->gw;
    unsigned i;

    memset(out, 0, sizeof *out);
    out->closing = atomic_load(&gw->closing);
    out->loops = (int)gw->n;
    for (i = 0; i < gw->n; i++) {
        gw_loop *o = &gw->loops[i].pub;
        nrpc_client *c;

        out->in_flight += atomic_load_explicit(&o->in_flight, memory_order_relaxed);
        /* Another loop's client is alive until gw_gateway_release, which
         * first waits until no loop can be inside this function with
         * closing unset. Past that, only our own. */
        if (out->closing && o != l)
            continue;
        c = o->client;
        if (c == NULL)
            continue;
        out->connected += nrpc_client_connected(c);
        out->rebuilding += nrpc_client_rebuilding(c);
        /* The loops' connections go down and come back together (they
         * talk to the same servers): count the gateway's, the most any
         * loop saw, not the same outage once per loop. */
        if (nrpc_client_rebuilds(c) > out->rebuilds)
            out->rebuilds = nrpc_client_rebuilds(c);
        if (nrpc_client_reconnects(c) > out->reconnects)
            out->reconnects = nrpc_client_reconnects(c);
    }
}

gw_metrics *const *
gw_gateway_metrics(gw_gateway *gw, size_t *n)
{
    *n = gw->n;
    return gw->metrics;
}

/* ---------------------------------------------------------------------------
 * Steps: main thread -> loop, and wait.
 */

static void
loop_on_step(uv_async_t *a)
{
    loop_slot *s = a->data;
    loop_step step;

    pthread_mutex_lock(&s->mu);
    step = s->step;
    s->step = NULL;
    pthread_mutex_unlock(&s->mu);
    if (step)
        step(&s->pub);
    pthread_mutex_lock(&s->mu);
    s->step_done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Runs step on every loop, in parallel, and waits until each has run it. */
static void
gateway_step(gw_gateway *gw, loop_step step)
{
    unsigned i;

    for (i = 0; i < gw->n; i++) {
        loop_slot *s = &gw->loops[i];
        pthread_mutex_lock(&s->mu);
        s->step = step;
        s->step_done = 0;
        pthread_mutex_unlock(&s->mu);
        uv_async_send(&s->step_async);
    }
    for (i = 0; i < gw->n; i++) {
        loop_slot *s = &gw->loops[i];
        pthread_mutex_lock(&s->mu);
        while (!s->step_done && !s->ended)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
    }
}

static void
step_quiesce(gw_loop *l)
{
    gw_http_quiesce(l->http);
    gw_ws_quiesce(l->ws); /* WebSockets close 1001, no GOODBYE: clients reconnect */
}

/* Nothing: that the loop ran it is the point (see gw_gateway_release). */
static void
step_barrier(gw_loop *l)
{
}

static void
step_release(gw_loop *l)
{
    gw_catalog_stop(l->catalog); /* answers pages waiting for a gather */
    gw_ws_quiesce(l->ws);        /* no subscription left on the client */
    /* Answers what still waits (503): those connections resume, and the
     * loop's MHD writes the answers before it polls again. */
    gw_auth_loop_detach(l->auth); /* the authorizer fails closed from now on */
    nrpc_client_destroy(l->client);
    l->client = NULL;
}

static void
step_stop(gw_loop *l)
{
    loop_slot *s = (loop_slot *)l;

    if (l->client) {
        step_release(l);
    }
    gw_catalog_free(l->catalog); /* after the client: a gather's end came */
    l->catalog = NULL;
    gw_auth_loop_free(l->auth); /* freed once its thread-pool checks are back */
    l->auth = NULL;
    gw_ws_stop(l->ws); /* sockets back to MHD as their handles close */
    l->ws = NULL;
    gw_http_close(l->http); /* the daemon itself stops once uv_run returns */
    uv_close((uv_handle_t *)&s->step_async, NULL);
    if (uv_is_active((uv_handle_t *)&s->log_flush))
        uv_close((uv_handle_t *)&s->log_flush, NULL);
    /* uv_run returns once the closes above and nats.c's adapter handles
     * are done. */
}

/* ---------------------------------------------------------------------------
 * A loop's thread.
 */

static void
loop_report(loop_slot *s, int ready)
{
    pthread_mutex_lock(&s->mu);
    s->ready = ready;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void
loop_on_log_flush(uv_prepare_t *p)
{
    nrpc_log_flush();
}

/* Builds everything of the loop, in the order the loop needs them: HTTP's
 * uv_prepare before the client's uv_check, so that within one turn the
 * client's replies are drained and then, before the next poll, written. */
static int
loop_setup(loop_slot *s)
{
    gw_loop *l = &s->pub;
    char name[32], tname[16];
    nrpc_client_opts copts = {.nats_url = NULL, .name = name, .loop = &l->uv};
    int fd = s->listen_fd;

    s->listen_fd = -1;
    if (uv_loop_init(&l->uv) != 0) {
        close(fd);
        return -1;
    }
    if (uv_async_init(&l->uv, &s->step_async, loop_on_step) != 0) {
        close(fd);
        return -1;
    }
    s->step_async.data = s;
    /* Started before HTTP's uv_prepare, so it runs after it (libuv runs the
     * latest started first): the lines of what MHD just answered go out in
     * the same turn. */
    uv_prepare_init(&l->uv, &s->log_flush);
    uv_prepare_start(&s->log_flush, loop_on_log_flush);
    nrpc_log_batch(1);
    if (gw_http_start(&l->http, l, fd, s->ipv6) != NRPC_OK)
        return -1;
    snprintf(name, sizeof name, "natsrpc-gateway/%u", l->index);
    copts.nats_url = getenv("NATS_URL");
    /* The first connection starts nats.c's library threads, which take the
     * name of the thread that creates them: call them what they are. */
    pthread_setname_np(pthread_self(), "nats.c");
    if (nrpc_client_create(&l->client, &copts) != NRPC_OK) {
        nrpc_log(NRPC_LOG_ERROR, "loop %u: cannot create the NATS client", l->index);
        return -1;
    }
    snprintf(tname, sizeof tname, "gw-loop-%u", l->index);
    pthread_setname_np(pthread_self(), tname);
    /* Loop 0 refreshes the catalog in the background; every loop gathers
     * when a page asks for a refresh or finds the documents stale. */
    if (gw_catalog_start(&l->catalog, &l->uv, l->client, &l->gw->docs, l->index == 0) !=
        NRPC_OK)
        return -1;
    if (l->cfg->auth && (l->auth = gw_auth_loop_new(l->cfg->auth, &l->uv, l->client)) == NULL)
        return -1;
    if (gw_ws_start(&l->ws, &l->uv, l->cfg, l->client, gw_http_due, l->http) != NRPC_OK)
        nrpc_log(NRPC_LOG_WARN, "loop %u: no WebSockets; /websocket answers 503", l->index);
    gw_ws_set_loop(l->ws, l);
    return 0;
}

/* Marks the thread's end for loop_join. */
static void
loop_ended(loop_slot *s)
{
    pthread_mutex_lock(&s->mu);
    s->ended = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *
loop_main(void *arg)
{
    loop_slot *s = arg;
    gw_loop *l = &s->pub;
    char name[16];
    int ok;

    /* top -H and /proc/<pid>/task/<tid>/comm show which loop is which. */
    snprintf(name, sizeof name, "gw-loop-%u", l->index);
    pthread_setname_np(pthread_self(), name);
    ok = loop_setup(s) == 0;
    if (!ok && s->step_async.data == NULL) {
        /* Not even a loop to unwind. */
        loop_report(s, -1);
        loop_ended(s);
        return NULL;
    }
    if (ok)
        loop_report(s, 1);
    else
        step_stop(l); /* what was built goes; uv_run closes it */
    uv_run(&l->uv, UV_RUN_DEFAULT);
    gw_http_free(l->http);
    l->http = NULL;
    nrpc_log_batch(0);
    if (uv_loop_close(&l->uv) != 0)
        nrpc_log(NRPC_LOG_WARN, "loop %u: handles left open at exit", l->index);
    if (!ok)
        loop_report(s, -1);
    loop_ended(s);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Listening sockets.
 */

/* A listening socket on addr with SO_REUSEPORT, so that every loop can have
 * its own on the same port. Returns the descriptor or -1 (errno set). */
static int
listen_open(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, addr, len) != 0 || listen(fd, LOOP_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Opens gw->n listening sockets on cfg's host and port into the slots.
 * Returns 0, or -1 (logged; those opened are closed). */
static int
gateway_listen(gw_gateway *gw)
{
    struct addrinfo hints = {0}, *ai = NULL;
    struct sockaddr_storage addr;
    socklen_t alen;
    char port[16];
    unsigned i;
    int rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%u", gw->cfg.port);
    rc = getaddrinfo(gw->host, port, &hints, &ai);
    if (rc != 0 || ai == NULL || ai->ai_addrlen > sizeof addr) {
        nrpc_log(NRPC_LOG_ERROR, "GATEWAY_HOST=%s: %s", gw->host,
                 rc ? gai_strerror(rc) : "no address");
        if (ai)
            freeaddrinfo(ai);
        return -1;
    }
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    alen = (socklen_t)ai->ai_addrlen;
    freeaddrinfo(ai);
    for (i = 0; i < gw->n; i++) {
        loop_slot *s = &gw->loops[i];

        s->ipv6 = addr.ss_family == AF_INET6;
        s->listen_fd = listen_open((struct sockaddr *)&addr, alen);
        if (s->listen_fd < 0) {
            nrpc_log(NRPC_LOG_ERROR, "cannot listen on %s port %u: %s", gw->host, gw->cfg.port,
                     strerror(errno));
            while (i-- > 0) {
                close(gw->loops[i].listen_fd);
                gw->loops[i].listen_fd = -1;
            }
            return -1;
        }
        if (i == 0) {
            /* Port 0: the kernel picked one; the other loops take the same. */
            socklen_t l = sizeof addr;
            getsockname(s->listen_fd, (struct sockaddr *)&addr, &l);
            gw->port = ntohs(addr.ss_family == AF_INET6
                                 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                 : ((struct sockaddr_in *)&addr)->sin_port);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Life cycle (main thread).
 */

static void
gateway_free(gw_gateway *gw)
{
    unsigned i;

    for (i = 0; i < gw->n; i++) {
        loop_slot *s = &gw->loops[i];
        if (s->listen_fd >= 0)
            close(s->listen_fd);
        gw_metrics_free(s->pub.metrics);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
    }
    gw_catalog_docs_free(&gw->docs);
    free(gw->loops);
    free(gw->metrics);
    free(gw);
}

nrpc_status
gw_gateway_start(gw_gateway **out, const gw_config *cfg)
{
    gw_gateway *gw = calloc(1, sizeof *gw);
    unsigned i;
    int failed = 0;

    if (gw == NULL)
        return NRPC_ERR_NOMEM;
    gw->cfg = *cfg;
    snprintf(gw->host, sizeof gw->host, "%s", cfg->host ? cfg->host : "127.0.0.1");
    snprintf(gw->docs_dir, sizeof gw->docs_dir, "%s", cfg->docs_dir ? cfg->docs_dir : "");
    gw->cfg.host = gw->host;
    gw->cfg.docs_dir = gw->docs_dir;
    gw->n = cfg->threads ? cfg->threads : 1;
    gw->cfg.threads = gw->n;
    gw->port = cfg->port;
    if (gw_catalog_docs_init(&gw->docs) != 0) {
        free(gw);
        return NRPC_ERR_NOMEM;
    }
    gw->loops = calloc(gw->n, sizeof *gw->loops);
    gw->metrics = calloc(gw->n, sizeof *gw->metrics);
    if (gw->loops == NULL || gw->metrics == NULL) {
        gw_catalog_docs_free(&gw->docs);
        free(gw->loops);
        free(gw->metrics);
        free(gw);
        return NRPC_ERR_NOMEM;
    }
    for (i = 0; i < gw->n; i++) {
        loop_slot *s = &gw->loops[i];
        s->listen_fd = -1;
        s->pub.gw = gw;
        s->pub.index = i;
        s->pub.cfg = &gw->cfg;
        s->pub.metrics = gw->metrics[i] = gw_metrics_new();
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        if (s->pub.metrics == NULL)
            failed = 1;
    }
    if (failed || gateway_listen(gw) != 0) {
        gateway_free(gw);
        return failed ? NRPC_ERR_NOMEM : NRPC_ERR_SYSTEM;
    }
    for (i = 0; i < gw->n; i++) {
        loop_slot *s = &gw->loops[i];
        if (pthread_create(&s->thread, NULL, loop_main, s) != 0) {
            nrpc_log(NRPC_LOG_ERROR, "cannot start loop %u: %s", i, strerror(errno));
            failed = 1;
            break;
        }
        s->thread_started = 1;
    }
    for (i = 0; i < gw->n; i++) {
        loop_slot *s = &gw->loops[i];
        if (!s->thread_started)
            continue;
        pthread_mutex_lock(&s->mu);
        while (s->ready == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        failed |= s->ready < 0;
        pthread_mutex_unlock(&s->mu);
    }
    if (failed) {
        gw_gateway_stop(gw);
        return NRPC_ERR_SYSTEM;
    }
    *out = gw;
    return NRPC_OK;
}

unsigned
gw_gateway_port(gw_gateway *gw)
{
    return gw->port;
}

int
gw_gateway_in_flight(gw_gateway *gw)
{
    int n = 0;
    unsigned i;

    for (i = 0; i < gw->n; i++)
        n += atomic_load_explicit(&gw->loops[i].pub.in_flight, memory_order_relaxed);
    return n;
}

void
gw_gateway_quiesce(gw_gateway *gw)
{
    gateway_step(gw, step_quiesce);
}

void
gw_gateway_release(gw_gateway *gw)
{
    /* Loops read each other's clients for /healthz. Once closing is set and
     * every loop has run a step after it, no loop is still reading with
     * closing unset, so each may destroy its own. */
    atomic_store(&gw->closing, 1);
    gateway_step(gw, step_barrier);
    gateway_step(gw, step_release);
}

/* Joins a loop's thread, giving up after LOOP_JOIN_MS (logged). */
static void
loop_join(loop_slot *s)
{
    struct timespec ts;
    int ended;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += LOOP_JOIN_MS / 1000;
    pthread_mutex_lock(&s->mu);
    while (!s->ended && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
        ;
    ended = s->ended;
    pthread_mutex_unlock(&s->mu);
    if (ended)
        pthread_join(s->thread, NULL);
    else
        nrpc_log(NRPC_LOG_WARN, "loop %u did not end; leaving it", s->pub.index);
}

void
gw_gateway_stop(gw_gateway *gw)
{
    unsigned i;

    if (gw == NULL)
        return;
    for (i = 0; i < gw->n; i++) {
        loop_slot *s = &gw->loops[i];
        int serving;

        if (!s->thread_started)
            continue;
        pthread_mutex_lock(&s->mu);
        serving = s->ready > 0 && !s->ended;
        s->step = step_stop;
        s->step_done = 0;
        pthread_mutex_unlock(&s->mu);
        if (serving)
            uv_async_send(&s->step_async);
    }
    for (i = 0; i < gw->n; i++)
        if (gw->loops[i].thread_started)
            loop_join(&gw->loops[i]);
    gateway_free(gw);
}
