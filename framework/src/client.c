/*
 * client.c: asynchronous requests over one shared NATS connection.
 *
 * nats.c 3.4 has no callback-based request API, so the client builds one:
 *
 *   - one connection (nrpc__nats_connect: SendAsap, reconnect forever);
 *   - one inbox, subscribed once as "<inbox>.*"; every request gets a
 *     number (a counter) and is published with reply "<inbox>.<token>",
 *     the number sealed (internal.h), so that no other client can answer
 *     it, nor tell the next one's reply subject;
 *   - pending requests live in an nrpc_table keyed by number and in a
 *     min-heap ordered by deadline (each entry knows its heap slot, so
 *     removing a replied request is O(log n)); one mutex guards both;
 *   - one timer thread sleeps on a condition variable until the earliest
 *     deadline and answers expired requests with 504;
 *   - every request remembers the connection generation it was sent in;
 *     nats.c's disconnected callback raises it (client_on_disconnected) and
 *     the timer's work fails older requests with 503 at once, however fast
 *     the reconnect (see "Connection loss" in natsrpc.h).
 *
 * nats.c gives up on a connection for good on some server errors (a
 * protocol line over the server's limit, an authorization failure): it ends
 * CLOSED and never reconnects. conn.c logs that and calls our closed hook,
 * and the timer thread builds a new connection in its place (see
 * client_rebuild): pending requests fail at once with 503, the reply inbox
 * and every live subscription are subscribed again on the new connection.
 * The connection pointer is atomic: other threads load it once per call
 * and may still use the old one for a moment, so a closed connection is
 * kept (retired) until destroy, never freed under them.
 *
 * Whoever removes an entry from the table (reply callback, timer thread,
 * disconnect sweep, destroy, or a failed publish) owns it and is the only one
 * to answer it: that is what makes "exactly once" hold. Callbacks always run
 * outside the mutex.
 *
 * Loop mode (opts->loop, client_loop.c): the same client driven by one
 * libuv loop instead of threads. nats.c reads and writes the socket on the
 * loop through its libuv adapter, the reply inbox and the subscriptions are
 * synchronous subscriptions that the loop drains after every poll, and the
 * timer's work runs from a uv_timer. Every callback then runs on the loop's
 * thread, mu is never taken, and a request crosses no thread.
 *
 * A request costs one allocation for its entry (subject inline) plus the
 * natsMsg; the table and the heap grow geometrically and never shrink.
 * Replies are read by nrpc__reply_read, as outgoing calls of services read
 * theirs, so both see the same codes for the same message.
 */
#include "client.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t subs_mu = PTHREAD_MUTEX_INITIALIZER;
static nrpc_table subs;    /* every thread-mode client's, by id; under subs_mu */
static uint64_t subs_next; /* under subs_mu */

/* Thread mode shares one table of subscriptions under subs_mu (see the
 * subscription section). A loop-mode client keeps its own, touched by its
 * loop alone: no lock. */
static void
subs_lock(nrpc_client *c)
{
    if (c->loop == NULL)
        pthread_mutex_lock(&subs_mu);
}

static void
subs_unlock(nrpc_client *c)
{
    if (c->loop == NULL)
        pthread_mutex_unlock(&subs_mu);
}

static nrpc_table *
subs_of(nrpc_client *c)
{
    return c->loop ? &c->own_subs : &subs;
}

/* The current connection. Load it once per call and use that one: a
 * rebuild may swap it meanwhile, and the old one stays allocated. */
static natsConnection *
client_nc(nrpc_client *c)
{
    return atomic_load(&c->nc);
}

/* Subscribes every live subscription of c that is not on nc yet on nc
 * (the subscription section below). Returns how many are on nc now. */
static size_t subs_move(nrpc_client *c, natsConnection *nc);

/* ------------------------------------------------------------------------
 * Min-heap on deadline; heap size equals c->count.
 */

static void
heap_set(nrpc_client *c, size_t i, client_entry *e)
{
    c->heap[i] = e;
    e->heap_idx = i;
}

static void
heap_up(nrpc_client *c, size_t i)
{
    client_entry *e = c->heap[i];

    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (c->heap[p]->deadline <= e->deadline)
            break;
        heap_set(c, i, c->heap[p]);
        i = p;
    }
    heap_set(c, i, e);
}

static void
heap_down(nrpc_client *c, size_t i, size_t n)
{
    client_entry *e = c->heap[i];

    for (;;) {
        size_t l = 2 * i + 1, m;
        if (l >= n)
            break;
        m = (l + 1 < n && c->heap[l + 1]->deadline < c->heap[l]->deadline) ? l + 1 : l;
        if (c->heap[m]->deadline >= e->deadline)
            break;
        heap_set(c, i, c->heap[m]);
        i = m;
    }
    heap_set(c, i, e);
}

/* e's deadline changed: moves it to its place in the heap. */
static void
heap_fix(nrpc_client *c, client_entry *e)
{
    size_t i = e->heap_idx;

    if (i > 0 && c->heap[(i - 1) / 2]->deadline > e->deadline)
        heap_up(c, i);
    else
        heap_down(c, i, c->count);
}

/* Removes e from the heap; n is the heap size before removal. */
static void
heap_remove(nrpc_client *c, client_entry *e, size_t n)
{
    size_t i = e->heap_idx;
    client_entry *last = c->heap[n - 1];

    if (i == n - 1)
        return;
    heap_set(c, i, last);
    if (i > 0 && c->heap[(i - 1) / 2]->deadline > last->deadline)
        heap_up(c, i);
    else
        heap_down(c, i, n - 1);
}

/* Adds e to table and heap. Returns -1 when out of memory. Locked. */
static int
pending_add(nrpc_client *c, client_entry *e)
{
    if (c->count + 1 > c->heap_cap) {
        size_t cap = c->heap_cap ? c->heap_cap * 2 : 256;
        client_entry **h = realloc(c->heap, cap * sizeof *h);
        if (h == NULL)
            return -1;
        c->heap = h;
        c->heap_cap = cap;
    }
    if (nrpc_table_put(&c->pending, &e->node, e->node.key) != 0)
        return -1;
    c->heap[c->count] = e;
    e->heap_idx = c->count;
    heap_up(c, c->count);
    c->count++;
    return 0;
}

/* Gives e a token and puts it in the table, waking the timer thread when
 * its deadline is the new earliest. On failure e is freed. */
static nrpc_status
pending_register(nrpc_client *c, client_entry *e, uint64_t *token)
{
    int rc;

    client_lock(c);
    if (c->stopping) {
        client_unlock(c);
        free(e);
        return NRPC_ERR_STATE;
    }
    *token = e->node.key = c->next_token++;
    /* Read before the publish: a disconnect between the two makes the
     * request look older than it is (failed though its reply may come),
     * never newer (waiting for a reply that is lost). */
    e->gen = atomic_load(&c->gen);
    if (e->hb_ms > 0) {
        int64_t w = nrpc__hb_watch(&c->hb_known, e->subject, e->hb_ms, nrpc_now_ms());
        if (w < e->deadline)
            e->deadline = w;
    }
    rc = pending_add(c, e);
    if (rc == 0 && e->heap_idx == 0) { /* new earliest deadline */
        if (c->loop) {
            int64_t check = nrpc_now_ms() + CLIENT_LINK_CHECK_MS;
            nrpc__client_loop_arm(c, e->deadline < check ? e->deadline : check);
        } else {
            pthread_cond_signal(&c->cv);
        }
    }
    client_unlock(c);
    if (rc != 0) {
        free(e);
        return NRPC_ERR_NOMEM;
    }
    return NRPC_OK;
}

/* The entry for token, left in place, or NULL. Locked. */
static client_entry *
pending_find(nrpc_client *c, uint64_t token)
{
    return (client_entry *)nrpc_table_get(&c->pending, token);
}

/* Removes e from table and heap. Locked. */
static void
pending_remove(nrpc_client *c, client_entry *e)
{
    nrpc_table_remove(&c->pending, &e->node);
    heap_remove(c, e, c->count);
    c->count--;
}

/* Unlinks and returns the entry for token, or NULL if someone else took
 * it. Locked. */
static client_entry *
pending_take(nrpc_client *c, uint64_t token)
{
    client_entry *e = pending_find(c, token);

    if (e)
        pending_remove(c, e);
    return e;
}

/* Empties table and heap into a list (linked by next). Locked. */
static client_entry *
pending_take_all(nrpc_client *c)
{
    client_entry *list = NULL;
    size_t i;

    for (i = 0; i < c->count; i++) {
        client_entry *e = c->heap[i];
        nrpc_table_remove(&c->pending, &e->node);
        e->next = list;
        list = e;
    }
    c->count = 0;
    return list;
}

/* Unlinks every request sent before generation gen, into a list (linked
 * by next). Locked. */
static client_entry *
client_take_older(nrpc_client *c, uint64_t gen)
{
    client_entry *list = NULL, *e;
    size_t i;

    for (i = 0; i < c->count; i++)
        if (c->heap[i]->gen != gen) {
            c->heap[i]->next = list;
            list = c->heap[i];
        }
    for (e = list; e; e = e->next)
        pending_remove(c, e);
    return list;
}

/* ------------------------------------------------------------------------
 * Answers.
 */

/* Frees an entry nobody holds any more, with its own reply subscription
 * (loop mode, cold subject). */
/* Puts a cold request on list (c->cold or c->late). */
static void
cold_link(client_entry *e, client_entry **list)
{
    e->cold_list = list;
    e->cold_prev = NULL;
    e->cold_next = *list;
    if (*list)
        (*list)->cold_prev = e;
    *list = e;
}

static void
cold_unlink(client_entry *e)
{
    if (e->cold_prev)
        e->cold_prev->cold_next = e->cold_next;
    else
        *e->cold_list = e->cold_next;
    if (e->cold_next)
        e->cold_next->cold_prev = e->cold_prev;
    e->cold_prev = e->cold_next = NULL;
}

static void
entry_free(client_entry *e)
{
    if (e->own) {
        natsSubscription_Unsubscribe(e->own);
        natsSubscription_Destroy(e->own);
        cold_unlink(e);
    }
    free(e);
}

/* Loop mode. A reply inbox shared by every request is one synchronous
 * subscription, and nats.c's NextMsg reports a "no responders" status on
 * it as NATS_NO_RESPONDERS and drops the message, subject and all: we
 * cannot tell which request it was for. So a request goes through the
 * shared inbox only when its subject answered within CLIENT_WARM_MS (a
 * service listens, the usual case); a request to a cold subject gets a
 * reply subscription of its own, where the status can only be its own:
 * 404 at once for an rpc nobody serves. The table is bounded by
 * forgetting everything past CLIENT_WARM_MAX subjects. */
typedef struct {
    nrpc_tnode node; /* keyed by nrpc_hash_str(subject); first */
    int64_t seen_ms;
    char subject[];
} warm_subject;

static warm_subject *
warm_find(nrpc_client *c, const char *subject)
{
    uint64_t h = nrpc_hash_str(subject);
    nrpc_tnode *n;

    for (n = nrpc_table_get(&c->warm, h); n; n = nrpc_table_next(&c->warm, n, h))
        if (strcmp(((warm_subject *)n)->subject, subject) == 0)
            return (warm_subject *)n;
    return NULL;
}

static void
warm_forget(nrpc_client *c)
{
    nrpc_tnode *n;

    while ((n = nrpc_table_take_any(&c->warm)) != NULL)
        free(n);
}

static int
warm_is(nrpc_client *c, const char *subject)
{
    warm_subject *w = warm_find(c, subject);
    return w != NULL && nrpc_now_ms() - w->seen_ms < CLIENT_WARM_MS;
}

/* subject answered: it is warm from now. */
static void
warm_seen(nrpc_client *c, const char *subject)
{
    warm_subject *w = warm_find(c, subject);
    size_t len;

    if (w == NULL) {
        if (c->warm.count >= CLIENT_WARM_MAX)
            warm_forget(c);
        len = strlen(subject);
        w = malloc(sizeof *w + len + 1);
        if (w == NULL)
            return; /* stays cold: slower, still right */
        memcpy(w->subject, subject, len + 1);
        if (nrpc_table_put(&c->warm, &w->node, nrpc_hash_str(subject)) != 0) {
            free(w);
            return;
        }
    }
    w->seen_ms = nrpc_now_ms();
}

/* Calls e's callback with an error body built from code and message, then
 * frees e. Not locked. */
static void
entry_fail(client_entry *e, int code, const char *type, const char *message)
{
    nrpc_response r = {.code = code};
    char *text = nrpc__error_text(code, type, message);

    /* Out of memory: still answer exactly once, with a fixed body. */
    r.data = text
                 ? text
                 : "{\"error\":{\"code\":500,\"type\":\"internal\",\"message\":\"out of memory\"}}";
    r.len = strlen(r.data);
    e->cb(&r, e->closure);
    free(text);
    entry_free(e);
}

/* ------------------------------------------------------------------------
 * Gathers. A gather sits in the table and the heap like a request, but a
 * reply does not remove it: it stays until its deadline (or no responders,
 * a lost link, destroy). e->refs counts the table's hold plus the reply
 * callbacks running; whoever drops the last one calls on_done and frees e,
 * so on_done runs once, after every on_item. Not locked.
 */
static void
gather_release(client_entry *e, int code)
{
    nrpc_client *c = e->client;
    int last;

    client_lock(c);
    if (code != 0 && e->done_code == 0)
        e->done_code = code;
    last = --e->refs == 0;
    client_unlock(c);
    if (!last)
        return;
    if (e->done_code != 0) {
        char msg[512];
        if (e->done_code == NRPC_CODE_NOT_FOUND)
            snprintf(msg, sizeof msg, "nobody listens on %s", e->subject);
        else
            snprintf(msg, sizeof msg, "%s", CLIENT_LOST_MESSAGE " (or the client is closing)");
        entry_fail(e, e->done_code, NULL, msg);
        return;
    }
    {
        nrpc_response r = {.code = 0, .data = "", .len = 0};
        e->cb(&r, e->closure);
        entry_free(e);
    }
}

/* One reply to a gather; the caller took a reference on e. */
static void
gather_item(client_entry *e, natsMsg *msg)
{
    nrpc_client *c = e->client;
    nrpc__reply rr;
    nrpc_response r;

    nrpc__reply_read(msg, &rr);
    if (rr.no_responders) {
        /* Nobody subscribed: end now rather than at the deadline. */
        client_lock(c);
        if (pending_find(c, e->node.key) == e) {
            pending_remove(c, e);
            e->refs--; /* the table's hold; ours keeps e alive */
        }
        client_unlock(c);
        gather_release(e, NRPC_CODE_NOT_FOUND);
        return;
    }
    r.code = rr.code;
    r.data = rr.data;
    r.len = rr.len;
    e->on_item(&r, e->closure);
    gather_release(e, 0);
}

static void
entry_fail_list(client_entry *list, int code, const char *message)
{
    while (list) {
        client_entry *next = list->next;
        if (list->on_item)
            gather_release(list, code);
        else
            entry_fail(list, code, NULL, message);
        list = next;
    }
}

/* e's deadline passed: its timeout (504), or the heartbeats it was
 * watching stopped (503, the replica was lost). */
static void
entry_timeout(client_entry *e)
{
    char msg[512];

    if (e->deadline < e->hard_deadline) {
        nrpc__hb_lost_message(msg, sizeof msg, e->subject,
                              e->hb_seen ? nrpc__hb_limit(e->hb_ms) : nrpc__hb_first(e->hb_ms));
        entry_fail(e, NRPC_CODE_UNAVAILABLE, "unavailable", msg);
        return;
    }
    snprintf(msg, sizeof msg, "no reply from %s within %g s", e->subject,
             (double)e->timeout_ms / 1000.0);
    entry_fail(e, NRPC_CODE_TIMEOUT, "timeout", msg);
}

/* A heartbeat came for request e (still in the table): the subject sends
 * them, and e is watched from now on. Locked. */
static void
entry_heartbeat(nrpc_client *c, client_entry *e)
{
    int64_t now = nrpc_now_ms(), d;

    nrpc__hb_learn(&c->hb_known, e->subject);
    if (e->hb_ms <= 0)
        return; /* not asked for: nothing to watch */
    e->hb_seen = 1;
    d = now + nrpc__hb_limit(e->hb_ms);
    e->deadline = d < e->hard_deadline ? d : e->hard_deadline;
    heap_fix(c, e);
    if (e->heap_idx != 0)
        return;
    /* The new earliest deadline (the first heartbeat can bring it
     * forward): make sure the timer's work runs by then. */
    if (c->loop)
        nrpc__client_loop_arm(c, e->deadline);
    else
        pthread_cond_signal(&c->cv);
}

/* Answers e from a reply message: no responders, a service error, or a
 * result. Not locked. */
static void
entry_reply(client_entry *e, natsMsg *msg)
{
    nrpc__reply rr;
    nrpc_response r;
    char text[NRPC_MAX_SUBJECT + 32];

    nrpc__reply_read(msg, &rr);
    if (rr.no_responders) {
        snprintf(text, sizeof text, "no such rpc: %s", e->subject);
        entry_fail(e, NRPC_CODE_NOT_FOUND, "not_found", text);
        return;
    }
    if (rr.code != 0 && rr.len == 0) {
        /* A service answered with headers only: build the body. */
        entry_fail(e, rr.code, NULL, rr.message);
        return;
    }
    if (e->client->loop)
        warm_seen(e->client, e->subject);
    r.code = rr.code;
    r.data = rr.data;
    r.len = rr.len;
    e->cb(&r, e->closure);
    entry_free(e);
}

/* ------------------------------------------------------------------------
 * NATS side.
 */

void
nrpc__client_reply(nrpc_client *c, natsMsg *msg)
{
    const char *subj = natsMsg_GetSubject(msg);
    client_entry *e = NULL;
    uint64_t token = 0;
    const char *p;

    /* "<inbox>.<sealed token>": anything else is not a reply of ours */
    if (subj && strlen(subj) > c->inbox_len + 1) {
        p = subj + c->inbox_len + 1;
        if (nrpc__seal_open(&c->seal, p, strlen(p), &token) == 0) {
            int hb = nrpc__is_heartbeat(msg);
            client_lock(c);
            e = pending_find(c, token);
            if (e && hb) {
                /* Not the reply: the request waits on, watched. */
                if (!e->on_item)
                    entry_heartbeat(c, e);
                e = NULL;
            } else if (e && e->on_item) {
                e->refs++; /* a gather stays until its deadline */
            } else if (e) {
                e = pending_take(c, token);
            }
            client_unlock(c);
        }
    }
    /* No entry: a late reply after its timeout, or a duplicate. Dropped. */
    if (e && e->on_item)
        gather_item(e, msg);
    else if (e)
        entry_reply(e, msg);
    nrpc__msg_destroy(msg);
}

void
nrpc__client_cold_poll(nrpc_client *c, client_entry *e)
{
    natsMsg *m = NULL;
    natsStatus st;
    char text[NRPC_MAX_SUBJECT + 32];

    while ((st = natsSubscription_NextMsg(&m, e->own, 0)) == NATS_OK && nrpc__is_heartbeat(m)) {
        if (pending_find(c, e->node.key) == e)
            entry_heartbeat(c, e);
        natsMsg_Destroy(m);
        m = NULL;
    }
    if (st != NATS_OK && st != NATS_NO_RESPONDERS)
        return; /* nothing yet */
    if (pending_take(c, e->node.key) != e) {
        nrpc__msg_destroy(m);
        return;
    }
    if (st == NATS_OK) {
        entry_reply(e, m);
        nrpc__msg_destroy(m);
        return;
    }
    snprintf(text, sizeof text, "no such rpc: %s", e->subject);
    entry_fail(e, NRPC_CODE_NOT_FOUND, "not_found", text);
}

void
nrpc__client_cold_poll_all(nrpc_client *c, client_entry *list)
{
    client_entry *e, *next;

    for (e = list; e; e = next) {
        next = e->cold_next;
        nrpc__client_cold_poll(c, e);
    }
}

void
nrpc__client_no_responders(nrpc_client *c)
{
    client_entry *only = NULL;
    size_t i, shared = 0, gathers = 0;

    for (i = 0; i < c->count; i++) {
        client_entry *e = c->heap[i];
        if (e->on_item)
            gathers++;
        else if (e->own == NULL && shared++ == 0)
            only = e;
    }
    /* One request on the shared inbox and no gather: it is that one. */
    if (shared == 1 && gathers == 0) {
        char text[NRPC_MAX_SUBJECT + 32];
        pending_remove(c, only);
        snprintf(text, sizeof text, "no such rpc: %s", only->subject);
        entry_fail(only, NRPC_CODE_NOT_FOUND, "not_found", text);
        warm_forget(c);
        return;
    }
    /* Otherwise a service went away under warm subjects (or a gather found
     * nobody): forget them all, so the next requests can be told apart.
     * The request it was for waits for its timeout. */
    warm_forget(c);
}

/* Thread mode: nats.c's delivery thread. */
static void
client_on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nrpc__client_reply(closure, msg);
}

/* The last callback of a reply subscription has returned. */
static void
client_on_sub_complete(void *closure)
{
    nrpc_client *c = closure;

    client_lock(c);
    c->reply_subs--;
    pthread_cond_broadcast(&c->cv);
    client_unlock(c);
}

/* Subscribes the reply inbox "<inbox>.*" on nc. *out is new. */
static natsStatus
reply_subscribe(nrpc_client *c, natsConnection *nc, natsSubscription **out)
{
    natsSubscription *sub = NULL;
    char subj[sizeof c->inbox + 2];
    natsStatus s;

    snprintf(subj, sizeof subj, "%s.*", c->inbox);
    if (c->loop) {
        /* Loop mode: nobody delivers; the loop drains it after every poll
         * (client_loop.c), so a reply reaches its callback on the thread
         * that read it from the socket. */
        s = natsConnection_SubscribeSync(&sub, nc, subj);
        if (s == NATS_OK)
            s = natsSubscription_SetPendingLimits(sub, -1, -1);
        if (s != NATS_OK) {
            nrpc_log(NRPC_LOG_ERROR, "client: reply subscription failed: %s",
                     natsStatus_GetText(s));
            natsSubscription_Destroy(sub);
            return s;
        }
        *out = sub;
        return NATS_OK;
    }
    /* Counted first: the subscription may end (its connection closed) the
     * moment its completion callback is set. */
    client_lock(c);
    c->reply_subs++;
    client_unlock(c);
    s = natsConnection_Subscribe(&sub, nc, subj, client_on_reply, c);
    /* Replies are tiny and answered at once; never drop them as a slow
     * consumer under a burst. */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub, client_on_sub_complete, c);
    if (s != NATS_OK) {
        nrpc_log(NRPC_LOG_ERROR, "client: reply subscription failed: %s", natsStatus_GetText(s));
        natsSubscription_Destroy(sub);
        client_lock(c);
        c->reply_subs--; /* no completion callback will come */
        client_unlock(c);
        return s;
    }
    *out = sub;
    return NATS_OK;
}

/* 1 if subject may go out: at most NRPC_MAX_SUBJECT bytes. A longer one
 * could pass nats-server's limit for a protocol line, and the server closes
 * a connection that sends such a line, for every user of the connection. */
static int
subject_ok(const char *subject)
{
    return subject != NULL && strnlen(subject, NRPC_MAX_SUBJECT + 1) <= NRPC_MAX_SUBJECT;
}

static int
link_up(natsConnection *nc)
{
    return nc != NULL && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

/* Turns a monotonic-ms deadline into the condvar's CLOCK_MONOTONIC timespec. */
static void
deadline_ts(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* ------------------------------------------------------------------------
 * Rebuilding a connection nats.c closed for good.
 */

/* The connection ended CLOSED by itself: the timer's work rebuilds.
 * Locked. */
void
nrpc__client_closed(nrpc_client *c)
{
    c->rebuild_wanted = 1;
    c->rebuilding = 1;
}

/* nats.c thread (conn.c's hook). In loop mode the loop does the work
 * (client_loop.c), woken here. */
static void
client_on_closed(void *closure)
{
    nrpc_client *c = closure;

    if (c->loop) {
        atomic_store(&c->hook_closed, 1);
        nrpc__client_loop_wake(c);
        return;
    }
    client_lock(c);
    nrpc__client_closed(c);
    pthread_cond_broadcast(&c->cv);
    client_unlock(c);
}

/* A new connection is up: the rebuild is over. Locked. */
static void
rebuild_done(nrpc_client *c)
{
    c->rebuilding = 0;
    c->rebuild_attempts = 0;
    c->rebuild_at = 0;
}

/* nats.c thread (conn.c's hook): a connection is up. After a rebuild that
 * is the new one (the old one is closed and never connects again), unless
 * the rebuild is still under way; client_rebuild then looks itself. */
void
nrpc__client_connected(nrpc_client *c)
{
    if (!c->rebuild_wanted && !c->in_rebuild)
        rebuild_done(c);
}

static void
client_on_connected(void *closure)
{
    nrpc_client *c = closure;

    if (c->loop) {
        atomic_store(&c->hook_connected, 1);
        nrpc__client_loop_wake(c);
        return;
    }
    client_lock(c);
    nrpc__client_connected(c);
    client_unlock(c);
}

/* nats.c thread (conn.c's hook): the connection was lost. Every request
 * sent on it fails now, even when nats.c is connected again a millisecond
 * later: nats.c subscribes the reply inbox again on the new server with the
 * same subject, but a reply the service published before that interest
 * reached the cluster was dropped, and nothing tells which ones were. The
 * generation goes up here, at once; the timer's work (on the loop in loop
 * mode) fails the older requests. */
static void
client_on_disconnected(void *closure)
{
    nrpc_client *c = closure;

    atomic_fetch_add(&c->gen, 1);
    if (c->loop) {
        nrpc__client_loop_wake(c);
        return;
    }
    client_lock(c);
    pthread_cond_broadcast(&c->cv);
    client_unlock(c);
}

static nrpc_status
client_connect(nrpc_client *c, natsConnection **nc)
{
    nrpc__conn_hooks hooks = {.connected = client_on_connected,
                              .disconnected = client_on_disconnected,
                              .closed = client_on_closed,
                              .closure = c,
                              .loop = c->loop};

    return nrpc__nats_connect(nc, c->url, c->name, &hooks);
}

/* Timer thread, unlocked. Replaces the connection nats.c closed for good:
 * fails every pending request at once with 503 (their replies would come
 * to the closed connection), builds a new connection, subscribes the reply
 * inbox and every live subscription on it, then makes it the current one.
 * The old connection is retired, not freed: another thread may have loaded
 * it a moment ago. Returns 0, or -1 when the attempt failed (logged) and
 * must be tried again. */
static int
client_rebuild(nrpc_client *c)
{
    natsConnection *old = client_nc(c), *nc = NULL;
    natsSubscription *reply = NULL;
    client_entry *lost;
    size_t nsubs, slot;
    int up;

    if (old != NULL && !natsConnection_IsClosed(old)) {
        client_lock(c);
        if (link_up(old))
            rebuild_done(c); /* nothing to replace */
        client_unlock(c);
        return 0;
    }
    client_lock(c);
    lost = pending_take_all(c);
    client_unlock(c);
    entry_fail_list(lost, NRPC_CODE_UNAVAILABLE, "NATS connection closed; it is being rebuilt");

    if (client_connect(c, &nc) != NRPC_OK)
        return -1;
    if (reply_subscribe(c, nc, &reply) != NATS_OK) {
        nrpc__nats_close(nc);
        return -1;
    }
    /* Under subs_mu, so that a concurrent nrpc_client_subscribe either
     * lands on the new connection or is moved there here. */
    subs_lock(c);
    atomic_store(&c->nc, nc);
    nsubs = subs_move(c, nc);
    subs_unlock(c);

    natsSubscription_Destroy(c->sub); /* closed with old; nats.c keeps it while delivering */
    c->sub = reply;
    if (old == NULL) {
        /* Loop mode, NATS was not there at start: this is the first
         * connection, not a rebuild. */
        client_lock(c);
        if (link_up(nc) && !c->rebuild_wanted)
            rebuild_done(c);
        client_unlock(c);
        if (link_up(nc))
            nrpc__client_nudge_peers(c);
        nrpc_log(NRPC_LOG_INFO, "client: NATS connection made; %zu subscriptions on it", nsubs);
        return 0;
    }
    client_lock(c);
    slot = (size_t)(c->rebuilds++ % CLIENT_MAX_RETIRED);
    up = link_up(nc);
    if (up && !c->rebuild_wanted)
        rebuild_done(c);
    client_unlock(c);
    nrpc__nats_close(c->retired[slot]); /* CLIENT_MAX_RETIRED rebuilds ago; NULL-safe */
    c->retired[slot] = old;
    if (c->loop && up)
        nrpc__client_nudge_peers(c);
    nrpc_log(NRPC_LOG_INFO,
             "client: new NATS connection built (%s); reply inbox and %zu subscriptions "
             "subscribed again",
             up ? "connected" : "connecting in the background", nsubs);
    return 0;
}

/* The timer's work (client.h): answers expired requests with 504, and
 * while requests are pending checks the link every CLIENT_LINK_CHECK_MS so a
 * dropped connection fails them with 503. It also rebuilds the connection
 * when nats.c closed it for good, retrying failed attempts with
 * nrpc_backoff_ms. */
int64_t
nrpc__client_work(nrpc_client *c)
{
    while (!c->stopping) {
        int64_t now = nrpc_now_ms(), wake = INT64_MAX;
        client_entry *expired = NULL, *lost = NULL;

        if (c->rebuild_wanted && c->rebuild_at <= now) {
            int rc;
            c->rebuild_wanted = 0; /* a close during the rebuild sets it again */
            c->in_rebuild = 1;
            client_unlock(c);
            rc = client_rebuild(c);
            client_lock(c);
            c->in_rebuild = 0;
            if (rc != 0)
                c->rebuild_wanted = 1;
            /* Until a new connection comes up, rebuilds back off: a server
             * that closes every new connection (refused credentials) must
             * not get one per millisecond. */
            if (rc != 0 || c->rebuilding)
                c->rebuild_at = nrpc_now_ms() + nrpc_backoff_ms(++c->rebuild_attempts, 100, 2000);
            continue;
        }
        if (c->loop) {
            /* Cold requests past their window: nobody said "no
             * responders", so someone listens; they wait on as late ones. */
            client_entry *e, *next;
            for (e = c->cold; e; e = next) {
                next = e->cold_next;
                if (e->cold_until <= now) {
                    warm_seen(c, e->subject);
                    cold_unlink(e);
                    cold_link(e, &c->late);
                }
            }
            if (c->late && now - c->late_polled >= CLIENT_LATE_POLL_MS) {
                c->late_polled = now;
                client_unlock(c);
                nrpc__client_cold_poll_all(c, c->late);
                client_lock(c);
                continue;
            }
        }
        if (c->swept_gen != atomic_load(&c->gen)) {
            c->swept_gen = atomic_load(&c->gen);
            lost = client_take_older(c, c->swept_gen);
            if (lost) {
                client_unlock(c);
                entry_fail_list(lost, NRPC_CODE_UNAVAILABLE, CLIENT_LOST_MESSAGE);
                client_lock(c);
                continue;
            }
        }
        while (c->count > 0 && c->heap[0]->deadline <= now) {
            client_entry *e = c->heap[0];
            pending_remove(c, e);
            e->next = expired;
            expired = e;
        }
        if (c->count > 0 && !link_up(client_nc(c)))
            lost = pending_take_all(c);
        if (expired || lost) {
            client_unlock(c);
            while (expired) {
                client_entry *next = expired->next;
                if (expired->on_item)
                    gather_release(expired, 0); /* a gather's window is over */
                else
                    entry_timeout(expired);
                expired = next;
            }
            entry_fail_list(lost, NRPC_CODE_UNAVAILABLE, CLIENT_LOST_MESSAGE);
            client_lock(c);
            continue;
        }
        if (c->count > 0) {
            wake = c->heap[0]->deadline;
            if (wake > now + CLIENT_LINK_CHECK_MS)
                wake = now + CLIENT_LINK_CHECK_MS;
            if (c->cold && wake > now + CLIENT_COLD_WINDOW_MS / 4)
                wake = now + CLIENT_COLD_WINDOW_MS / 4;
            if (c->late && wake > c->late_polled + CLIENT_LATE_POLL_MS)
                wake = c->late_polled + CLIENT_LATE_POLL_MS;
        }
        if (c->rebuild_wanted && c->rebuild_at < wake)
            wake = c->rebuild_at;
        return wake;
    }
    return INT64_MAX;
}

/* Thread mode: the timer thread sleeps until the work wants to run again,
 * or until a new earliest deadline or a hook wakes it. */
static void *
client_timer_main(void *arg)
{
    nrpc_client *c = arg;

    client_lock(c);
    while (!c->stopping) {
        int64_t wake = nrpc__client_work(c);

        if (c->stopping)
            break;
        if (wake == INT64_MAX) {
            pthread_cond_wait(&c->cv, &c->mu);
        } else {
            struct timespec ts;
            deadline_ts(wake, &ts);
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
    }
    client_unlock(c);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Public API.
 */

nrpc_status
nrpc_client_create(nrpc_client **out, const nrpc_client_opts *opts)
{
    nrpc_client *c;
    natsConnection *nc = NULL;
    pthread_condattr_t ca;
    nrpc_status st;

    if (out == NULL)
        return NRPC_ERR_INVALID_ARG;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NRPC_ERR_NOMEM;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* matches nrpc_now_ms */
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->next_token = 1;
    c->loop = opts ? opts->loop : NULL;
    c->tick_due = INT64_MAX;
    c->url = opts && opts->nats_url ? strdup(opts->nats_url) : NULL;
    c->name = strdup(opts && opts->name ? opts->name : "natsrpc-client");
    if ((opts && opts->nats_url && c->url == NULL) || c->name == NULL) {
        st = NRPC_ERR_NOMEM;
        goto fail;
    }

    /* Under NATS_INBOX_PREFIX: a bad one fails the client here, before
     * its connection would say the same. */
    st = nrpc_inbox_new(c->inbox, sizeof c->inbox);
    if (st != NRPC_OK) {
        char why[256];
        nrpc_inbox_prefix_check(getenv("NATS_INBOX_PREFIX"), why, sizeof why);
        nrpc_log(NRPC_LOG_ERROR, "%s", why);
        goto fail;
    }
    c->inbox_len = strlen(c->inbox);
    if (nrpc__seal_init(&c->seal) != 0) {
        nrpc_log(NRPC_LOG_ERROR, "client: no random key for reply tokens (getrandom)");
        st = NRPC_ERR_SYSTEM;
        goto fail;
    }
    st = client_connect(c, &nc);
    if (st == NRPC_ERR_NATS && c->loop) {
        /* On a loop nats.c cannot retry a first connection in the
         * background (its first attach must happen on the loop's thread),
         * so the loop does: the same backoff as a rebuild. */
        c->rebuild_wanted = 1;
        c->rebuild_at = nrpc_now_ms() + nrpc_backoff_ms(++c->rebuild_attempts, 100, 2000);
        st = NRPC_OK;
    }
    if (st != NRPC_OK)
        goto fail;
    atomic_store(&c->nc, nc);
    if (nc && reply_subscribe(c, nc, &c->sub) != NATS_OK) {
        st = NRPC_ERR_NATS;
        goto fail;
    }
    if (c->loop) {
        if (nrpc__client_loop_start(c) != 0) {
            st = NRPC_ERR_SYSTEM;
            goto fail;
        }
        if (c->rebuild_wanted)
            nrpc__client_loop_arm(c, c->rebuild_at);
        *out = c;
        return NRPC_OK;
    }
    if (pthread_create(&c->timer, NULL, client_timer_main, c) != 0) {
        nrpc_log(NRPC_LOG_ERROR, "client: cannot start the timer thread: %s", strerror(errno));
        st = NRPC_ERR_SYSTEM;
        goto fail;
    }
    c->timer_started = 1;
    *out = c;
    return NRPC_OK;

fail:
    nrpc_client_destroy(c);
    return st;
}

/* Waits up to CLIENT_CLOSE_WAIT_MS until no reply callback can run any
 * more. Returns 1 when none can, else 0. */
static int
client_replies_done(nrpc_client *c)
{
    struct timespec ts;
    int done;

    deadline_ts(nrpc_now_ms() + CLIENT_CLOSE_WAIT_MS, &ts);
    client_lock(c);
    while (c->reply_subs > 0 && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
        ;
    done = c->reply_subs == 0;
    client_unlock(c);
    return done;
}

/* Loop mode, on the loop: no thread to stop and no callback that can run
 * elsewhere, so everything ends here; c goes with its handles' close
 * callbacks, which the loop runs next. */
static void
client_loop_destroy(nrpc_client *c)
{
    client_entry *list;
    nrpc_tnode *t;
    size_t i;

    c->stopping = 1;
    list = pending_take_all(c);
    entry_fail_list(list, NRPC_CODE_UNAVAILABLE, "client shutting down");
    /* Subscriptions the owner left open end with the client. */
    while (c->dead_subs) {
        nrpc_subscription *s = c->dead_subs;
        c->dead_subs = s->dead_next;
        nrpc_table_remove(&c->own_subs, &s->node);
        nrpc__client_sub_free(s);
    }
    while ((t = nrpc_table_take_any(&c->own_subs)) != NULL)
        nrpc__client_sub_free((nrpc_subscription *)t);
    /* After these no hook of conn.c runs for c (internal.h): the wake-up
     * handle can close. */
    nrpc__nats_close(client_nc(c));
    for (i = 0; i < CLIENT_MAX_RETIRED; i++)
        nrpc__nats_close(c->retired[i]);
    natsSubscription_Destroy(c->sub);
    warm_forget(c);
    nrpc_table_free(&c->warm);
    nrpc__hb_forget(&c->hb_known);
    nrpc_table_free(&c->hb_known);
    nrpc_table_free(&c->pending);
    nrpc_table_free(&c->own_subs);
    free(c->heap);
    free(c->url);
    free(c->name);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    nrpc__client_loop_close(c);
}

void
nrpc_client_destroy(nrpc_client *c)
{
    client_entry *list;
    natsConnection *nc;
    size_t i;
    int done;

    if (c == NULL)
        return;
    if (c->loop) {
        client_loop_destroy(c);
        return;
    }
    client_lock(c);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cv);
    client_unlock(c);
    if (c->timer_started)
        pthread_join(c->timer, NULL);
    nc = client_nc(c); /* no rebuild can swap it any more */

    /* Stop replies, and wait until the reply callback can no longer run:
     * it uses c, which is about to be freed. Reply subscriptions of
     * retired connections ended with them. */
    if (c->sub)
        natsSubscription_Unsubscribe(c->sub);
    done = client_replies_done(c);
    if (!done && nc) {
        natsConnection_Close(nc); /* closes the subscription too */
        done = client_replies_done(c);
    }

    client_lock(c);
    list = pending_take_all(c);
    client_unlock(c);
    entry_fail_list(list, NRPC_CODE_UNAVAILABLE, "client shutting down");

    /* After these no hook of conn.c runs for c (internal.h). */
    nrpc__nats_close(nc);
    for (i = 0; i < CLIENT_MAX_RETIRED; i++)
        nrpc__nats_close(c->retired[i]);
    if (!done) {
        /* A callback may still be running: leaking c is safer than
         * freeing memory it is about to touch. */
        nrpc_log(NRPC_LOG_WARN, "client: reply subscription did not close; not freeing it");
        return;
    }
    natsSubscription_Destroy(c->sub);
    nrpc__hb_forget(&c->hb_known);
    nrpc_table_free(&c->hb_known);
    nrpc_table_free(&c->pending);
    free(c->heap);
    free(c->url);
    free(c->name);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

nrpc_status
nrpc_client_expect_heartbeats(nrpc_client *c, const char *subject, int expect)
{
    int rc;

    if (c == NULL || !subject_ok(subject))
        return NRPC_ERR_INVALID_ARG;
    client_lock(c);
    rc = nrpc__hb_expect(&c->hb_known, subject, expect != 0);
    client_unlock(c);
    return rc == 0 ? NRPC_OK : NRPC_ERR_NOMEM;
}

nrpc_status
nrpc_client_request(nrpc_client *c, const char *subject, const char *data, size_t len,
                    int64_t timeout_ms, const char *const *headers, nrpc_response_cb cb,
                    void *closure)
{
    size_t slen;
    client_entry *e;
    natsConnection *nc;
    natsMsg *msg = NULL;
    char reply[192], tmo[24], sealed[NRPC__SEALED_LEN + 1];
    uint64_t token;
    int64_t e_hb_ms;
    natsStatus s;
    nrpc_status st;

    if (c == NULL || !subject_ok(subject) || cb == NULL || timeout_ms <= 0 ||
        (data == NULL && len > 0))
        return NRPC_ERR_INVALID_ARG;
    /* While disconnected nats.c would buffer the publish for later; callers
     * want an answer now (the gateway turns this into 503). */
    nc = client_nc(c);
    if (!link_up(nc))
        return NRPC_ERR_STATE;

    slen = strlen(subject);
    e = calloc(1, sizeof *e + slen + 1);
    if (e == NULL)
        return NRPC_ERR_NOMEM;
    memcpy(e->subject, subject, slen + 1);
    e->client = c;
    e->cb = cb;
    e->closure = closure;
    e->timeout_ms = timeout_ms;
    e->deadline = e->hard_deadline = nrpc_now_ms() + timeout_ms;
    e->hb_ms = nrpc__hb_interval(timeout_ms);

    /* Register before publishing: the reply can arrive before
     * PublishMsg returns. */
    st = pending_register(c, e, &token);
    if (st != NRPC_OK)
        return st;

    /* From here on e belongs to the table: a reply or the timer may free it. */
    e_hb_ms = nrpc__hb_interval(timeout_ms);
    nrpc__seal_token(&c->seal, token, sealed);
    snprintf(reply, sizeof reply, "%s.%s", c->inbox, sealed);
    s = NATS_OK;
    if (c->loop && !warm_is(c, subject)) {
        /* A cold subject: a reply subscription of its own, subscribed
         * before the publish on the same connection, so it is in place
         * when the answer comes. "<inbox>.c.<token>" is not matched by the
         * shared "<inbox>.*". */
        snprintf(reply, sizeof reply, "%s.c.%s", c->inbox, sealed);
        s = natsConnection_SubscribeSync(&e->own, nc, reply);
        if (s == NATS_OK) {
            e->cold_until = nrpc_now_ms() + CLIENT_COLD_WINDOW_MS;
            cold_link(e, &c->cold);
        }
    }
    snprintf(tmo, sizeof tmo, "%" PRId64, timeout_ms);
    if (s == NATS_OK)
        s = natsMsg_Create(&msg, subject, reply, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, NRPC_HDR_TIMEOUT, tmo);
    if (s == NATS_OK && e_hb_ms > 0) {
        char hb[24];
        snprintf(hb, sizeof hb, "%" PRId64, e_hb_ms);
        s = natsMsgHeader_Set(msg, NRPC_HDR_HEARTBEAT_MS, hb);
    }
    for (; s == NATS_OK && headers && headers[0] && headers[1]; headers += 2)
        s = natsMsgHeader_Add(msg, headers[0], headers[1]);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(nc, msg);
    nrpc__msg_destroy(msg);
    if (s != NATS_OK) {
        client_entry *mine;

        client_lock(c);
        mine = pending_take(c, token);
        client_unlock(c);
        if (mine == NULL)
            return NRPC_OK; /* already answered (timeout or disconnect sweep) */
        entry_free(mine);
        nrpc_log(NRPC_LOG_WARN, "client: publish on %s failed: %s", subject, natsStatus_GetText(s));
        return s == NATS_INVALID_SUBJECT || s == NATS_INVALID_ARG ? NRPC_ERR_INVALID_ARG
                                                                  : NRPC_ERR_NATS;
    }
    return NRPC_OK;
}

int
nrpc_client_connected(nrpc_client *c)
{
    return c != NULL && link_up(client_nc(c));
}

int64_t
nrpc_client_max_payload(nrpc_client *c)
{
    natsConnection *nc = c ? client_nc(c) : NULL;
    int64_t n = nc && link_up(nc) ? natsConnection_GetMaxPayload(nc) : 0;

    return n > 0 ? n : 0;
}

int
nrpc_client_pending(nrpc_client *c)
{
    int n;

    if (c == NULL)
        return 0;
    client_lock(c);
    n = (int)c->count;
    client_unlock(c);
    return n;
}

uint64_t
nrpc_client_reconnects(nrpc_client *c)
{
    natsStatistics *st = NULL;
    uint64_t n = 0;

    if (c == NULL || natsStatistics_Create(&st) != NATS_OK)
        return 0;
    if (natsConnection_GetStats(client_nc(c), st) != NATS_OK ||
        natsStatistics_GetCounts(st, NULL, NULL, NULL, NULL, &n) != NATS_OK)
        n = 0;
    natsStatistics_Destroy(st);
    return n;
}

uint64_t
nrpc_client_rebuilds(nrpc_client *c)
{
    return c == NULL ? 0 : atomic_load(&c->rebuilds);
}

int
nrpc_client_rebuilding(nrpc_client *c)
{
    return c != NULL && atomic_load(&c->rebuilding);
}

nrpc_status
nrpc_client_gather(nrpc_client *c, const char *subject, const char *data, size_t len,
                   int64_t wait_ms, nrpc_response_cb on_reply, nrpc_response_cb on_done,
                   void *closure)
{
    size_t slen;
    client_entry *e;
    natsConnection *nc;
    char reply[192], sealed[NRPC__SEALED_LEN + 1];
    uint64_t token;
    natsStatus s;
    nrpc_status st;

    if (c == NULL || !subject_ok(subject) || on_reply == NULL || on_done == NULL || wait_ms <= 0 ||
        (data == NULL && len > 0))
        return NRPC_ERR_INVALID_ARG;
    nc = client_nc(c);
    if (!link_up(nc))
        return NRPC_ERR_STATE;
    slen = strlen(subject);
    e = calloc(1, sizeof *e + slen + 1);
    if (e == NULL)
        return NRPC_ERR_NOMEM;
    memcpy(e->subject, subject, slen + 1);
    e->cb = on_done;
    e->on_item = on_reply;
    e->closure = closure;
    e->client = c;
    e->refs = 1; /* the table's */
    e->timeout_ms = wait_ms;
    e->deadline = e->hard_deadline = nrpc_now_ms() + wait_ms;

    st = pending_register(c, e, &token);
    if (st != NRPC_OK)
        return st;

    /* From here on e belongs to the table, as with a request. */
    nrpc__seal_token(&c->seal, token, sealed);
    snprintf(reply, sizeof reply, "%s.%s", c->inbox, sealed);
    s = natsConnection_PublishRequest(nc, subject, reply, data, (int)len);
    if (s != NATS_OK) {
        client_entry *mine;

        client_lock(c);
        mine = pending_take(c, token);
        client_unlock(c);
        if (mine == NULL)
            return NRPC_OK; /* already ended by the timer or a disconnect sweep */
        entry_free(mine);
        nrpc_log(NRPC_LOG_WARN, "client: publish on %s failed: %s", subject, natsStatus_GetText(s));
        return s == NATS_INVALID_SUBJECT || s == NATS_INVALID_ARG ? NRPC_ERR_INVALID_ARG
                                                                  : NRPC_ERR_NATS;
    }
    return NRPC_OK;
}

/* ------------------------------------------------------------------------
 * Subscriptions and plain publishes.
 *
 * Thread mode. nats.c may still be inside a message callback when a
 * subscription is destroyed, so the callback never trusts its closure:
 * live subscriptions are registered in one table keyed by an id of their
 * own, which nats.c carries as the closure, and the callback looks itself
 * up there and calls the user while holding the table's lock.
 * nrpc_client_unsubscribe takes the entry out under that lock first, so
 * once it returns the user's callback can no longer run. All deliveries
 * already share one NATS thread (conn.c), so the lock costs no parallelism.
 *
 * Loop mode. Subscriptions are synchronous, in the client's own table, and
 * drained by the loop after every poll (client_loop.c): no delivery thread
 * and no lock. One unsubscribed while the drain walks the table is only
 * marked (cb NULL) and freed after the walk.
 */

void
nrpc__client_deliver(nrpc_subscription *s, natsMsg *msg)
{
    nrpc_message m = {0};

    m.subject = natsMsg_GetSubject(msg);
    m.reply = natsMsg_GetReply(msg);
    if (m.reply && *m.reply == '\0')
        m.reply = NULL;
    m.data = natsMsg_GetData(msg);
    m.len = (size_t)natsMsg_GetDataLength(msg);
    if (m.data == NULL)
        m.data = "";
    m.impl = msg;
    s->cb(&m, s->closure);
    nrpc__msg_destroy(msg);
}

static void
client_on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nrpc_subscription *s;

    pthread_mutex_lock(&subs_mu);
    s = (nrpc_subscription *)nrpc_table_get(&subs, (uint64_t)(uintptr_t)closure);
    if (s)
        nrpc__client_deliver(s, msg);
    else
        natsMsg_Destroy(msg);
    pthread_mutex_unlock(&subs_mu);
}

const char *
nrpc_message_header(const nrpc_message *msg, const char *name)
{
    const char *v = NULL;

    if (msg == NULL || msg->impl == NULL || name == NULL)
        return NULL;
    if (natsMsgHeader_Get((natsMsg *)msg->impl, name, &v) != NATS_OK)
        return NULL;
    return v;
}

/* Subscribes s on nc. Under subs_mu (thread mode). */
static natsStatus
sub_open(nrpc_subscription *s, natsConnection *nc)
{
    natsStatus st;

    if (nc == NULL)
        return NATS_CONNECTION_CLOSED; /* loop mode, no connection yet */
    if (s->client->loop)
        st = natsConnection_SubscribeSync(&s->sub, nc, s->subject);
    else
        st = natsConnection_Subscribe(&s->sub, nc, s->subject, client_on_message,
                                      (void *)(uintptr_t)s->node.key);
    /* A browser-facing fan-out must not lose events to nats.c's default
     * pending limit under a burst; the gateway bounds its own queues. */
    if (st == NATS_OK)
        st = natsSubscription_SetPendingLimits(s->sub, -1, -1);
    if (st != NATS_OK) {
        natsSubscription_Destroy(s->sub);
        s->sub = NULL;
        return st;
    }
    s->nc = nc;
    return NATS_OK;
}

static size_t
subs_move(nrpc_client *c, natsConnection *nc)
{
    nrpc_table *t = subs_of(c);
    size_t i, n = 0;
    nrpc_tnode *node;

    for (i = 0; i < t->nbuckets; i++)
        for (node = t->buckets[i]; node; node = node->next) {
            nrpc_subscription *s = (nrpc_subscription *)node;
            natsStatus st;

            if (s->client != c || s->cb == NULL)
                continue;
            if (s->nc != nc) {
                natsSubscription_Destroy(s->sub); /* on the closed connection */
                s->sub = NULL;
                s->nc = NULL;
                st = sub_open(s, nc);
                if (st != NATS_OK)
                    nrpc_log(NRPC_LOG_WARN, "client: subscribing to %s again failed: %s",
                             s->subject, natsStatus_GetText(st));
            }
            n += s->nc == nc;
        }
    return n;
}

nrpc_status
nrpc_client_subscribe(nrpc_client *c, const char *subject, nrpc_message_cb cb, void *closure,
                      nrpc_subscription **out)
{
    nrpc_subscription *s;
    natsStatus st;
    size_t slen;

    if (c == NULL || !subject_ok(subject) || cb == NULL || out == NULL)
        return NRPC_ERR_INVALID_ARG;
    slen = strlen(subject);
    s = calloc(1, sizeof *s + slen + 1);
    if (s == NULL)
        return NRPC_ERR_NOMEM;
    memcpy(s->subject, subject, slen + 1);
    s->client = c;
    s->cb = cb;
    s->closure = closure;
    /* Registered under the lock before any message can be looked up: the
     * callback cannot run before Subscribe has stored s->sub. */
    subs_lock(c);
    s->node.key = c->loop ? ++c->own_next : ++subs_next;
    st = sub_open(s, client_nc(c));
    /* Closed by the server and not rebuilt yet (or, on a loop, not made
     * yet): the new connection gets s (subs_move). */
    if (st == NATS_CONNECTION_CLOSED)
        st = NATS_OK;
    if (st == NATS_OK && nrpc_table_put(subs_of(c), &s->node, s->node.key) != 0)
        st = NATS_NO_MEMORY;
    subs_unlock(c);
    if (st != NATS_OK) {
        nrpc_log(NRPC_LOG_WARN, "client: subscribe to %s failed: %s", subject,
                 natsStatus_GetText(st));
        natsSubscription_Destroy(s->sub);
        free(s);
        return st == NATS_INVALID_SUBJECT || st == NATS_INVALID_ARG ? NRPC_ERR_INVALID_ARG
               : st == NATS_NO_MEMORY                               ? NRPC_ERR_NOMEM
                                                                    : NRPC_ERR_NATS;
    }
    *out = s;
    return NRPC_OK;
}

void
nrpc__client_sub_free(nrpc_subscription *s)
{
    natsSubscription_Unsubscribe(s->sub); /* fails harmlessly once closed */
    natsSubscription_Destroy(s->sub);
    free(s);
}

void
nrpc_client_unsubscribe(nrpc_subscription *s)
{
    nrpc_client *c;

    if (s == NULL)
        return;
    c = s->client;
    subs_lock(c);
    if (c->loop && c->in_drain) {
        /* The drain is walking the table: it frees s after the walk. */
        s->cb = NULL;
        s->dead_next = c->dead_subs;
        c->dead_subs = s;
        return;
    }
    nrpc_table_remove(subs_of(c), &s->node);
    subs_unlock(c);
    /* Out of the table, s is no longer moved by a rebuild: s->sub is ours. */
    nrpc__client_sub_free(s);
}

nrpc_status
nrpc_client_publish(nrpc_client *c, const char *subject, const char *data, size_t len,
                    const char *const *headers)
{
    natsConnection *nc;
    natsMsg *msg = NULL;
    natsStatus s;

    if (c == NULL || !subject_ok(subject) || (data == NULL && len > 0))
        return NRPC_ERR_INVALID_ARG;
    nc = client_nc(c);
    if (!link_up(nc))
        return NRPC_ERR_STATE;
    s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    for (; s == NATS_OK && headers && headers[0] && headers[1]; headers += 2)
        s = natsMsgHeader_Add(msg, headers[0], headers[1]);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(nc, msg);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) {
        nrpc_log(NRPC_LOG_WARN, "client: publish on %s failed: %s", subject, natsStatus_GetText(s));
        return s == NATS_INVALID_SUBJECT || s == NATS_INVALID_ARG ? NRPC_ERR_INVALID_ARG
                                                                  : NRPC_ERR_NATS;
    }
    return NRPC_OK;
}
