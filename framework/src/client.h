/*
 * client.h: the private state of nrpc_client, shared by client.c (requests,
 * the deadline heap, subscriptions, the thread that drives them) and
 * client_loop.c (the same driven by a libuv loop instead).
 */
#ifndef NRPC_CLIENT_H
#define NRPC_CLIENT_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

/* How often the timer thread checks the link while requests are pending.
 * The disconnected hook fails requests in flight at once (see
 * client_sweep_lost); this check is the backstop for a link that is down
 * while requests wait, whatever the hooks said. */
#define CLIENT_LINK_CHECK_MS 250

/* The message of a request failed because its connection was lost. */
#define CLIENT_LOST_MESSAGE                                                                        \
    "NATS connection lost while the request was in flight; the reply may have been lost "      \
    "(the call may have run)"

/* How long destroy waits for the reply subscription's last callback. */
#define CLIENT_CLOSE_WAIT_MS 5000

/* Closed connections kept until destroy. Past this many rebuilds the oldest
 * one is closed for real: nothing can still be using it by then. */
#define CLIENT_MAX_RETIRED 64

typedef struct client_entry {
    nrpc_tnode node;           /* in pending, keyed by token; first */
    struct client_entry *next; /* a local list once removed */
    size_t heap_idx;
    int64_t deadline; /* monotonic ms: the earlier of the two below (the heap's key) */
    int64_t hard_deadline; /* monotonic ms: the timeout */
    int64_t hb_ms;         /* heartbeat interval asked for; 0: none */
    int hb_seen;           /* a heartbeat came: watched with nrpc__hb_limit */
    uint64_t gen;     /* c->gen when it was registered: the connection it went out on */
    int64_t timeout_ms;
    nrpc_response_cb cb;
    void *closure;
    /* Gathers only (on_item NULL for a request): see gather_release. */
    nrpc_response_cb on_item;
    struct nrpc_client *client;
    int refs;      /* the table's hold + reply callbacks running; under mu */
    int done_code; /* on_done's code: 0, 404 or 503 */
    /* Loop mode, a request to a cold subject (see client.c's warm
     * subjects): its own reply subscription, on c->cold until cold_until,
     * when a no-responders status would have come, then on c->late.
     * NULL otherwise. */
    natsSubscription *own;
    struct client_entry *cold_prev, *cold_next;
    struct client_entry **cold_list; /* &c->cold or &c->late */
    int64_t cold_until;              /* monotonic ms */
    char subject[]; /* NUL-terminated copy */
} client_entry;

struct nrpc_client {
    _Atomic(natsConnection *) nc; /* the current connection; see client_nc */
    natsSubscription *sub;        /* the reply inbox on nc; timer thread (or loop) */
    char inbox[128];              /* "<inbox>" without the trailing ".*" */
    size_t inbox_len;
    nrpc__seal seal;              /* reply tokens: "<inbox>.<sealed call number>" */
    char *url, *name; /* what to connect to again (url NULL: $NATS_URL) */

    pthread_mutex_t mu;
    pthread_cond_t cv; /* timer thread wake-up; also signals reply_subs */
    pthread_t timer;
    int timer_started;
    int stopping;
    int reply_subs; /* reply subscriptions whose last callback may still run */

    /* Rebuilds, written under mu. rebuilding runs from the close until the
     * new connection is up; that is what /healthz reports. */
    int rebuild_wanted;   /* the closed hook ran: the timer thread rebuilds */
    int in_rebuild;       /* the timer thread is rebuilding */
    int rebuild_attempts; /* rebuilds since a connection was last up */
    int64_t rebuild_at;   /* monotonic ms: no rebuild before (backoff) */
    atomic_int rebuilding;
    atomic_uint_fast64_t rebuilds;
    /* Connections replaced by a rebuild: timer thread, then destroy. */
    natsConnection *retired[CLIENT_MAX_RETIRED];

    /* Connection generations: gen goes up by one on every disconnect (the
     * hook, on a nats.c thread); a request remembers the generation it was
     * sent in, and the timer's work fails every request of an older one
     * (swept_gen: the generation it last swept for; under mu). */
    atomic_uint_fast64_t gen;
    uint64_t swept_gen;

    nrpc_table hb_known; /* subjects that sent heartbeats (heartbeat.c); under mu */

    uint64_t next_token;
    nrpc_table pending; /* by token */
    size_t count;       /* entries in pending and in the heap */
    client_entry **heap;
    size_t heap_cap;

    /* Loop mode (client_loop.c); loop is NULL in thread mode. Everything
     * above is then touched by the loop's thread alone, so mu is never
     * taken; the hooks of conn.c, which run on nats.c's threads, only set
     * hook_closed/hook_connected and wake the loop. */
    uv_loop_t *loop;
    uv_timer_t tick;  /* deadlines, link checks, rebuilds: client_work */
    uv_check_t drain; /* replies and messages, after every poll */
    uv_async_t wake;  /* the hooks -> the loop */
    int64_t tick_due; /* monotonic ms the tick fires at; INT64_MAX: stopped */
    int handles_open; /* the three above, until their close callbacks */
    int in_drain;     /* client_loop_drain is walking own_subs */
    nrpc_table own_subs;                 /* this client's subscriptions, by id */
    struct nrpc_subscription *dead_subs; /* unsubscribed during a drain */
    uint64_t own_next;
    atomic_int hook_closed, hook_connected;
    atomic_int hook_retry; /* another client got a connection: retry now */
    struct nrpc_client *peer_next; /* loop-mode clients of the process */
    client_entry *cold; /* requests with a reply subscription of their own... */
    client_entry *late; /* ... and those of them past their window */
    int64_t late_polled; /* monotonic ms: c->late was last polled */
    nrpc_table warm;    /* subjects that answered lately (client_warm) */
};

/* Loop mode: how long a request to a cold subject is polled on every turn
 * of the loop. NATS answers "no responders" as it takes the publish, so one
 * round trip is enough: past it the subject has a listener (it turns warm,
 * later requests use the shared inbox), and the request, which still waits
 * on its own subscription, is polled every CLIENT_LATE_POLL_MS instead, so
 * that thousands of slow calls sent to a new subject do not each cost a
 * NextMsg per turn. */
#define CLIENT_COLD_WINDOW_MS 250
#define CLIENT_LATE_POLL_MS 20
/* Loop mode: how long a subject that answered stays warm. */
#define CLIENT_WARM_MS 10000
/* Loop mode: subjects remembered as warm at most; past it, all are forgotten. */
#define CLIENT_WARM_MAX 1024

/* A subscription (see "Subscriptions and plain publishes" below). Every
 * field but node and the constant ones is under subs_mu while the
 * subscription is in the table. */
struct nrpc_subscription {
    nrpc_tnode node; /* in subs (own_subs in loop mode), keyed by id; first */
    struct nrpc_subscription *dead_next; /* on dead_subs */
    nrpc_client *client;
    natsConnection *nc; /* the connection sub is on; NULL: none yet */
    natsSubscription *sub;
    nrpc_message_cb cb;
    void *closure;
    char subject[]; /* kept to subscribe again on a new connection */
};

/* The client's lock, taken only in thread mode: in loop mode one thread
 * does everything, and the request path takes no lock of ours. */
static inline void
client_lock(nrpc_client *c)
{
    if (c->loop == NULL)
        pthread_mutex_lock(&c->mu);
}

static inline void
client_unlock(nrpc_client *c)
{
    if (c->loop == NULL)
        pthread_mutex_unlock(&c->mu);
}

/* client.c, for client_loop.c. All in loop mode are called on the loop. */

/* One pass of the timer's work: rebuild when due, 504 for expired
 * requests, 503 for requests sent before a disconnect or while the link is
 * down. Locked on entry and exit (it
 * unlocks to call back). Returns when it wants to run again (monotonic ms;
 * INT64_MAX: not before something changes). */
int64_t nrpc__client_work(nrpc_client *c);
/* Answers the entry a reply message is for (or drops it); takes msg. */
void nrpc__client_reply(nrpc_client *c, natsMsg *msg);
/* Loop mode: the reply or no-responders status waiting on a cold
 * request's own subscription, if any: answers it. */
void nrpc__client_cold_poll(nrpc_client *c, client_entry *e);
/* Loop mode: polls the list of cold requests (c->cold or c->late). */
void nrpc__client_cold_poll_all(nrpc_client *c, client_entry *list);
/* Loop mode: the reply inbox said "no responders" without saying for
 * which request (nats.c drops the message): answers it if that can be told. */
void nrpc__client_no_responders(nrpc_client *c);
/* Hands msg to the subscription's callback; takes msg. */
void nrpc__client_deliver(nrpc_subscription *s, natsMsg *msg);
/* Ends s for good: NATS, memory. Out of every table already. */
void nrpc__client_sub_free(nrpc_subscription *s);
/* A connection came up after a rebuild: every other loop-mode client of
 * the process that waits to rebuild tries again now (they talk to the same
 * servers, and NATS is evidently taking connections again). */
void nrpc__client_nudge_peers(nrpc_client *c);
/* The hooks' work, on the loop. */
void nrpc__client_closed(nrpc_client *c);
void nrpc__client_connected(nrpc_client *c);

/* client_loop.c */

/* Starts the loop's handles for c (c->loop set). 0, or -1 (logged). */
int nrpc__client_loop_start(nrpc_client *c);
/* Makes sure client_work runs by when (monotonic ms). */
void nrpc__client_loop_arm(nrpc_client *c, int64_t when);
/* A hook ran on a nats.c thread: wake the loop. Any thread. */
void nrpc__client_loop_wake(nrpc_client *c);
/* Closes the handles; c is freed in the last close callback. */
void nrpc__client_loop_close(nrpc_client *c);

#endif /* NRPC_CLIENT_H */
