/*
 * client_loop.c: an nrpc_client driven by one libuv loop (loop mode, see
 * client.c). Three handles on the caller's loop do what the client's
 * threads do in thread mode:
 *
 *   drain  a uv_check, after every poll: takes every message nats.c parsed
 *          on this loop from the reply inbox and the subscriptions, all
 *          synchronous subscriptions, with natsSubscription_NextMsg(..., 0),
 *          and calls back. nats.c read them in the poll phase just before
 *          (its libuv adapter watches the socket), so a reply reaches its
 *          callback on the thread that read it, without a delivery thread.
 *   tick   a uv_timer at the earliest of: a deadline, the next link check
 *          while requests are pending, the next rebuild attempt. Runs the
 *          same work as the timer thread (nrpc__client_work).
 *   wake   a uv_async: conn.c's hooks run on nats.c's threads; they only
 *          set a flag and wake the loop, which does the rest.
 *
 * The cost of a drain is one NextMsg per subscription per loop turn: the
 * gateway holds a handful (the inbox, one per WAMP topic in use, and one
 * per request in flight to a subject that has not answered lately: see
 * client.c's warm subjects, why no-responders needs them).
 */
#include "client.h"

#include <stdlib.h>

static void
loop_on_check(uv_check_t *h)
{
    nrpc_client *c = h->data;
    natsMsg *m = NULL;
    size_t i;

    natsStatus st;

    while (c->sub && (st = natsSubscription_NextMsg(&m, c->sub, 0)) != NATS_TIMEOUT) {
        if (st == NATS_OK)
            nrpc__client_reply(c, m);
        else if (st == NATS_NO_RESPONDERS)
            nrpc__client_no_responders(c);
        else
            break; /* closed: the rebuild replaces it */
    }
    nrpc__client_cold_poll_all(c, c->cold);
    if (c->own_subs.count == 0)
        return;
    c->in_drain = 1;
    for (i = 0; i < c->own_subs.nbuckets; i++) {
        nrpc_tnode *t;
        for (t = c->own_subs.buckets[i]; t; t = t->next) {
            nrpc_subscription *s = (nrpc_subscription *)t;
            while (s->cb && s->sub && natsSubscription_NextMsg(&m, s->sub, 0) == NATS_OK)
                nrpc__client_deliver(s, m);
        }
    }
    c->in_drain = 0;
    while (c->dead_subs) {
        nrpc_subscription *s = c->dead_subs;
        c->dead_subs = s->dead_next;
        nrpc_table_remove(&c->own_subs, &s->node);
        nrpc__client_sub_free(s);
    }
}

/* Runs the timer's work and sets the tick for its next run. */
static void
loop_work(nrpc_client *c)
{
    int64_t next;

    c->tick_due = INT64_MAX;
    uv_timer_stop(&c->tick);
    next = nrpc__client_work(c);
    if (next != INT64_MAX)
        nrpc__client_loop_arm(c, next);
}

static void
loop_on_tick(uv_timer_t *h)
{
    loop_work(h->data);
}

static void
loop_on_wake(uv_async_t *h)
{
    nrpc_client *c = h->data;

    if (atomic_exchange(&c->hook_closed, 0))
        nrpc__client_closed(c);
    if (atomic_exchange(&c->hook_connected, 0))
        nrpc__client_connected(c);
    if (atomic_exchange(&c->hook_retry, 0) && c->rebuild_wanted)
        c->rebuild_at = 0;
    loop_work(c);
}

void
nrpc__client_loop_arm(nrpc_client *c, int64_t when)
{
    int64_t now;

    if (c->stopping || when >= c->tick_due)
        return;
    now = nrpc_now_ms();
    c->tick_due = when;
    uv_timer_start(&c->tick, loop_on_tick, (uint64_t)(when > now ? when - now : 0), 0);
}

void
nrpc__client_loop_wake(nrpc_client *c)
{
    uv_async_send(&c->wake);
}

/* Loop-mode clients, for nrpc__client_nudge_peers. A client joins when its
 * handles are set up and leaves before they close. */
static pthread_mutex_t peers_mu = PTHREAD_MUTEX_INITIALIZER;
static nrpc_client *peers;

void
nrpc__client_nudge_peers(nrpc_client *c)
{
    nrpc_client *p;

    pthread_mutex_lock(&peers_mu);
    for (p = peers; p; p = p->peer_next) {
        if (p == c)
            continue;
        atomic_store(&p->hook_retry, 1);
        uv_async_send(&p->wake);
    }
    pthread_mutex_unlock(&peers_mu);
}

int
nrpc__client_loop_start(nrpc_client *c)
{
    if (uv_timer_init(c->loop, &c->tick) != 0)
        goto fail;
    c->handles_open++;
    if (uv_check_init(c->loop, &c->drain) != 0)
        goto fail;
    c->handles_open++;
    if (uv_async_init(c->loop, &c->wake, loop_on_wake) != 0)
        goto fail;
    c->handles_open++;
    c->tick.data = c->drain.data = c->wake.data = c;
    uv_check_start(&c->drain, loop_on_check);
    pthread_mutex_lock(&peers_mu);
    c->peer_next = peers;
    peers = c;
    pthread_mutex_unlock(&peers_mu);
    return 0;

fail:
    nrpc_log(NRPC_LOG_ERROR, "client: cannot set up its handles on the loop");
    return -1;
}

static void
loop_on_closed(uv_handle_t *h)
{
    nrpc_client *c = h->data;

    if (--c->handles_open == 0)
        free(c);
}

void
nrpc__client_loop_close(nrpc_client *c)
{
    int n = c->handles_open;
    nrpc_client **pp;

    pthread_mutex_lock(&peers_mu);
    for (pp = &peers; *pp; pp = &(*pp)->peer_next)
        if (*pp == c) {
            *pp = c->peer_next;
            break;
        }
    pthread_mutex_unlock(&peers_mu);

    if (n == 0) {
        free(c);
        return;
    }
    /* Handles were set up in this order; close those that were. */
    c->tick.data = c->drain.data = c->wake.data = c;
    uv_close((uv_handle_t *)&c->tick, loop_on_closed);
    if (n > 1)
        uv_close((uv_handle_t *)&c->drain, loop_on_closed);
    if (n > 2)
        uv_close((uv_handle_t *)&c->wake, loop_on_closed);
}
