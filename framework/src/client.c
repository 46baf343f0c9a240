/*
 * client.c: asynchronous requests over one shared NATS connection.
 *
 * nats.c 3.4 has no callback-based request API, so the client builds one:
 *
 *   - one connection (nrpc__nats_connect: SendAsap, reconnect forever);
 *   - one inbox, subscribed once as "<inbox>.*"; every request carries a
 *     token (a counter) and is published with reply "<inbox>.<token>";
 *   - pending requests live in an nrpc_table keyed by token and in a
 *     min-heap ordered by deadline (each entry knows its heap slot, so
 *     removing a replied request is O(log n)); one mutex guards both;
 *   - one timer thread sleeps on a condition variable until the earliest
 *     deadline and answers expired requests with 504.
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
 * A request costs one allocation for its entry (subject inline) plus the
 * natsMsg; the table and the heap grow geometrically and never shrink.
 * Replies are read by nrpc__reply_read, as outgoing calls of services read
 * theirs, so both see the same codes for the same message.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the timer thread checks the link while requests are pending: a
 * dropped connection loses every reply in flight, so they fail with 503 at
 * once instead of waiting for their timeout. */
#define CLIENT_LINK_CHECK_MS 250

/* How long destroy waits for the reply subscription's last callback. */
#define CLIENT_CLOSE_WAIT_MS 5000

/* Closed connections kept until destroy. Past this many rebuilds the oldest
 * one is closed for real: nothing can still be using it by then. */
#define CLIENT_MAX_RETIRED 64

typedef struct client_entry {
    nrpc_tnode node;           /* in pending, keyed by token; first */
    struct client_entry *next; /* a local list once removed */
    size_t heap_idx;
    int64_t deadline; /* monotonic ms */
    int64_t timeout_ms;
    nrpc_response_cb cb;
    void *closure;
    /* Gathers only (on_item NULL for a request): see gather_release. */
    nrpc_response_cb on_item;
    struct nrpc_client *client;
    int refs;      /* the table's hold + reply callbacks running; under mu */
    int done_code; /* on_done's code: 0, 404 or 503 */
    char subject[]; /* NUL-terminated copy */
} client_entry;

struct nrpc_client {
    _Atomic(natsConnection *) nc; /* the current connection; see client_nc */
    natsSubscription *sub;        /* the reply inbox on nc; timer thread */
    char inbox[128];              /* "<inbox>" without the trailing ".*" */
    size_t inbox_len;
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

    uint64_t next_token;
    nrpc_table pending; /* by token */
    size_t count;       /* entries in pending and in the heap */
    client_entry **heap;
    size_t heap_cap;
};

/* A subscription (see "Subscriptions and plain publishes" below). Every
 * field but node and the constant ones is under subs_mu while the
 * subscription is in the table. */
struct nrpc_subscription {
    nrpc_tnode node; /* in subs, keyed by id; first */
    nrpc_client *client;
    natsConnection *nc; /* the connection sub is on; NULL: none yet */
    natsSubscription *sub;
    nrpc_message_cb cb;
    void *closure;
    char subject[]; /* kept to subscribe again on a new connection */
};

static pthread_mutex_t subs_mu = PTHREAD_MUTEX_INITIALIZER;
static nrpc_table subs;    /* every client's, by id; under subs_mu */
static uint64_t subs_next; /* under subs_mu */

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

    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        free(e);
        return NRPC_ERR_STATE;
    }
    *token = e->node.key = c->next_token++;
    rc = pending_add(c, e);
    if (rc == 0 && e->heap_idx == 0)
        pthread_cond_signal(&c->cv); /* new earliest deadline */
    pthread_mutex_unlock(&c->mu);
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

/* ------------------------------------------------------------------------
 * Answers.
 */

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
    free(e);
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

    pthread_mutex_lock(&c->mu);
    if (code != 0 && e->done_code == 0)
        e->done_code = code;
    last = --e->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    if (e->done_code != 0) {
        char msg[512];
        if (e->done_code == NRPC_CODE_NOT_FOUND)
            snprintf(msg, sizeof msg, "nobody listens on %s", e->subject);
        else
            snprintf(msg, sizeof msg, "NATS connection lost or client closing");
        entry_fail(e, e->done_code, NULL, msg);
        return;
    }
    {
        nrpc_response r = {.code = 0, .data = "", .len = 0};
        e->cb(&r, e->closure);
        free(e);
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
        pthread_mutex_lock(&c->mu);
        if (pending_find(c, e->node.key) == e) {
            pending_remove(c, e);
            e->refs--; /* the table's hold; ours keeps e alive */
        }
        pthread_mutex_unlock(&c->mu);
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

static void
entry_timeout(client_entry *e)
{
    char msg[512];

    snprintf(msg, sizeof msg, "no reply from %s within %g s", e->subject,
             (double)e->timeout_ms / 1000.0);
    entry_fail(e, NRPC_CODE_TIMEOUT, "timeout", msg);
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
    r.code = rr.code;
    r.data = rr.data;
    r.len = rr.len;
    e->cb(&r, e->closure);
    free(e);
}

/* ------------------------------------------------------------------------
 * NATS side.
 */

static void
client_on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nrpc_client *c = closure;
    const char *subj = natsMsg_GetSubject(msg);
    client_entry *e = NULL;
    uint64_t token = 0;
    const char *p;

    /* "<inbox>.<token in hex>" */
    if (subj && strlen(subj) > c->inbox_len + 1) {
        int ok = 1;
        for (p = subj + c->inbox_len + 1; *p && ok; p++) {
            int d = (*p >= '0' && *p <= '9')   ? *p - '0'
                    : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
                                               : -1;
            if (d < 0)
                ok = 0;
            else
                token = token * 16 + (uint64_t)d;
        }
        if (ok) {
            pthread_mutex_lock(&c->mu);
            e = pending_find(c, token);
            if (e && e->on_item)
                e->refs++; /* a gather stays until its deadline */
            else if (e)
                e = pending_take(c, token);
            pthread_mutex_unlock(&c->mu);
        }
    }
    /* No entry: a late reply after its timeout, or a duplicate. Dropped. */
    if (e && e->on_item)
        gather_item(e, msg);
    else if (e)
        entry_reply(e, msg);
    natsMsg_Destroy(msg);
}

/* The last callback of a reply subscription has returned. */
static void
client_on_sub_complete(void *closure)
{
    nrpc_client *c = closure;

    pthread_mutex_lock(&c->mu);
    c->reply_subs--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Subscribes the reply inbox "<inbox>.*" on nc. *out is new. */
static natsStatus
reply_subscribe(nrpc_client *c, natsConnection *nc, natsSubscription **out)
{
    natsSubscription *sub = NULL;
    char subj[sizeof c->inbox + 2];
    natsStatus s;

    snprintf(subj, sizeof subj, "%s.*", c->inbox);
    /* Counted first: the subscription may end (its connection closed) the
     * moment its completion callback is set. */
    pthread_mutex_lock(&c->mu);
    c->reply_subs++;
    pthread_mutex_unlock(&c->mu);
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
        pthread_mutex_lock(&c->mu);
        c->reply_subs--; /* no completion callback will come */
        pthread_mutex_unlock(&c->mu);
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

/* nats.c thread (conn.c's hook): the connection ended CLOSED by itself. */
static void
client_on_closed(void *closure)
{
    nrpc_client *c = closure;

    pthread_mutex_lock(&c->mu);
    c->rebuild_wanted = 1;
    c->rebuilding = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
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
static void
client_on_connected(void *closure)
{
    nrpc_client *c = closure;

    pthread_mutex_lock(&c->mu);
    if (!c->rebuild_wanted && !c->in_rebuild)
        rebuild_done(c);
    pthread_mutex_unlock(&c->mu);
}

static nrpc_status
client_connect(nrpc_client *c, natsConnection **nc)
{
    nrpc__conn_hooks hooks = {
        .connected = client_on_connected, .closed = client_on_closed, .closure = c};

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
        pthread_mutex_lock(&c->mu);
        if (link_up(old))
            rebuild_done(c); /* nothing to replace */
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    pthread_mutex_lock(&c->mu);
    lost = pending_take_all(c);
    pthread_mutex_unlock(&c->mu);
    entry_fail_list(lost, NRPC_CODE_UNAVAILABLE, "NATS connection closed; it is being rebuilt");

    if (client_connect(c, &nc) != NRPC_OK)
        return -1;
    if (reply_subscribe(c, nc, &reply) != NATS_OK) {
        nrpc__nats_close(nc);
        return -1;
    }
    /* Under subs_mu, so that a concurrent nrpc_client_subscribe either
     * lands on the new connection or is moved there here. */
    pthread_mutex_lock(&subs_mu);
    atomic_store(&c->nc, nc);
    nsubs = subs_move(c, nc);
    pthread_mutex_unlock(&subs_mu);

    natsSubscription_Destroy(c->sub); /* closed with old; nats.c keeps it while delivering */
    c->sub = reply;
    pthread_mutex_lock(&c->mu);
    slot = (size_t)(c->rebuilds++ % CLIENT_MAX_RETIRED);
    up = link_up(nc);
    if (up && !c->rebuild_wanted)
        rebuild_done(c);
    pthread_mutex_unlock(&c->mu);
    nrpc__nats_close(c->retired[slot]); /* CLIENT_MAX_RETIRED rebuilds ago; NULL-safe */
    c->retired[slot] = old;
    nrpc_log(NRPC_LOG_INFO,
             "client: new NATS connection built (%s); reply inbox and %zu subscriptions "
             "subscribed again",
             up ? "connected" : "connecting in the background", nsubs);
    return 0;
}

/* The timer thread: sleeps until the earliest deadline, answers expired
 * requests with 504, and while requests are pending checks the link every
 * CLIENT_LINK_CHECK_MS so a dropped connection fails them with 503. It also
 * rebuilds the connection when nats.c closed it for good, retrying failed
 * attempts with nrpc_backoff_ms. */
static void *
client_timer_main(void *arg)
{
    nrpc_client *c = arg;

    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        int64_t now = nrpc_now_ms(), wake = INT64_MAX;
        client_entry *expired = NULL, *lost = NULL;

        if (c->rebuild_wanted && c->rebuild_at <= now) {
            int rc;
            c->rebuild_wanted = 0; /* a close during the rebuild sets it again */
            c->in_rebuild = 1;
            pthread_mutex_unlock(&c->mu);
            rc = client_rebuild(c);
            pthread_mutex_lock(&c->mu);
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
        while (c->count > 0 && c->heap[0]->deadline <= now) {
            client_entry *e = c->heap[0];
            pending_remove(c, e);
            e->next = expired;
            expired = e;
        }
        if (c->count > 0 && !link_up(client_nc(c)))
            lost = pending_take_all(c);
        if (expired || lost) {
            pthread_mutex_unlock(&c->mu);
            while (expired) {
                client_entry *next = expired->next;
                if (expired->on_item)
                    gather_release(expired, 0); /* a gather's window is over */
                else
                    entry_timeout(expired);
                expired = next;
            }
            entry_fail_list(lost, NRPC_CODE_UNAVAILABLE, "NATS connection lost");
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (c->count > 0) {
            wake = c->heap[0]->deadline;
            if (wake > now + CLIENT_LINK_CHECK_MS)
                wake = now + CLIENT_LINK_CHECK_MS;
        }
        if (c->rebuild_wanted && c->rebuild_at < wake)
            wake = c->rebuild_at;
        if (wake == INT64_MAX) {
            pthread_cond_wait(&c->cv, &c->mu);
        } else {
            struct timespec ts;
            deadline_ts(wake, &ts);
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
    }
    pthread_mutex_unlock(&c->mu);
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
    natsInbox *inbox = NULL;
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
    c->url = opts && opts->nats_url ? strdup(opts->nats_url) : NULL;
    c->name = strdup(opts && opts->name ? opts->name : "natsrpc-client");
    if ((opts && opts->nats_url && c->url == NULL) || c->name == NULL) {
        st = NRPC_ERR_NOMEM;
        goto fail;
    }

    st = client_connect(c, &nc);
    if (st != NRPC_OK)
        goto fail;
    atomic_store(&c->nc, nc);
    if (natsInbox_Create(&inbox) != NATS_OK) {
        st = NRPC_ERR_NOMEM;
        goto fail;
    }
    snprintf(c->inbox, sizeof c->inbox, "%s", (const char *)inbox);
    c->inbox_len = strlen(c->inbox);
    natsInbox_Destroy(inbox);
    if (reply_subscribe(c, nc, &c->sub) != NATS_OK) {
        st = NRPC_ERR_NATS;
        goto fail;
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
    pthread_mutex_lock(&c->mu);
    while (c->reply_subs > 0 && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
        ;
    done = c->reply_subs == 0;
    pthread_mutex_unlock(&c->mu);
    return done;
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
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
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

    pthread_mutex_lock(&c->mu);
    list = pending_take_all(c);
    pthread_mutex_unlock(&c->mu);
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
    nrpc_table_free(&c->pending);
    free(c->heap);
    free(c->url);
    free(c->name);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
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
    char reply[160], tmo[24];
    uint64_t token;
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
    e = malloc(sizeof *e + slen + 1);
    if (e == NULL)
        return NRPC_ERR_NOMEM;
    memcpy(e->subject, subject, slen + 1);
    e->cb = cb;
    e->closure = closure;
    e->timeout_ms = timeout_ms;
    e->deadline = nrpc_now_ms() + timeout_ms;
    e->next = NULL;
    e->on_item = NULL;

    /* Register before publishing: the reply can arrive before
     * PublishMsg returns. */
    st = pending_register(c, e, &token);
    if (st != NRPC_OK)
        return st;

    /* From here on e belongs to the table: a reply or the timer may free it. */
    snprintf(reply, sizeof reply, "%s.%" PRIx64, c->inbox, token);
    snprintf(tmo, sizeof tmo, "%" PRId64, timeout_ms);
    s = natsMsg_Create(&msg, subject, reply, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, NRPC_HDR_TIMEOUT, tmo);
    for (; s == NATS_OK && headers && headers[0] && headers[1]; headers += 2)
        s = natsMsgHeader_Add(msg, headers[0], headers[1]);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(nc, msg);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) {
        client_entry *mine;

        pthread_mutex_lock(&c->mu);
        mine = pending_take(c, token);
        pthread_mutex_unlock(&c->mu);
        if (mine == NULL)
            return NRPC_OK; /* already answered (timeout or disconnect sweep) */
        free(mine);
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

int
nrpc_client_pending(nrpc_client *c)
{
    int n;

    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->mu);
    n = (int)c->count;
    pthread_mutex_unlock(&c->mu);
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
    char reply[160];
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
    e->deadline = nrpc_now_ms() + wait_ms;

    st = pending_register(c, e, &token);
    if (st != NRPC_OK)
        return st;

    /* From here on e belongs to the table, as with a request. */
    snprintf(reply, sizeof reply, "%s.%" PRIx64, c->inbox, token);
    s = natsConnection_PublishRequest(nc, subject, reply, data, (int)len);
    if (s != NATS_OK) {
        client_entry *mine;

        pthread_mutex_lock(&c->mu);
        mine = pending_take(c, token);
        pthread_mutex_unlock(&c->mu);
        if (mine == NULL)
            return NRPC_OK; /* already ended by the timer or a disconnect sweep */
        free(mine);
        nrpc_log(NRPC_LOG_WARN, "client: publish on %s failed: %s", subject, natsStatus_GetText(s));
        return s == NATS_INVALID_SUBJECT || s == NATS_INVALID_ARG ? NRPC_ERR_INVALID_ARG
                                                                  : NRPC_ERR_NATS;
    }
    return NRPC_OK;
}

/* ------------------------------------------------------------------------
 * Subscriptions and plain publishes.
 *
 * nats.c may still be inside a message callback when a subscription is
 * destroyed, so the callback never trusts its closure: live subscriptions
 * are registered in one table keyed by an id of their own, which nats.c
 * carries as the closure, and the callback looks itself up there and calls
 * the user while holding the table's lock. nrpc_client_unsubscribe takes
 * the entry out under that lock first, so once it returns the user's
 * callback can no longer run. All deliveries already share one NATS thread
 * (conn.c), so the lock costs no parallelism.
 */

static void
client_on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nrpc_subscription *s;

    pthread_mutex_lock(&subs_mu);
    s = (nrpc_subscription *)nrpc_table_get(&subs, (uint64_t)(uintptr_t)closure);
    if (s) {
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
    }
    pthread_mutex_unlock(&subs_mu);
    natsMsg_Destroy(msg);
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

/* Subscribes s on nc. Under subs_mu. */
static natsStatus
sub_open(nrpc_subscription *s, natsConnection *nc)
{
    natsStatus st = natsConnection_Subscribe(&s->sub, nc, s->subject, client_on_message,
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
    size_t i, n = 0;
    nrpc_tnode *t;

    for (i = 0; i < subs.nbuckets; i++)
        for (t = subs.buckets[i]; t; t = t->next) {
            nrpc_subscription *s = (nrpc_subscription *)t;
            natsStatus st;

            if (s->client != c)
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
    pthread_mutex_lock(&subs_mu);
    s->node.key = ++subs_next;
    st = sub_open(s, client_nc(c));
    /* Closed by the server and not rebuilt yet: the rebuild subscribes s
     * on the new connection (subs_move). */
    if (st == NATS_CONNECTION_CLOSED)
        st = NATS_OK;
    if (st == NATS_OK && nrpc_table_put(&subs, &s->node, s->node.key) != 0)
        st = NATS_NO_MEMORY;
    pthread_mutex_unlock(&subs_mu);
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
nrpc_client_unsubscribe(nrpc_subscription *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&subs_mu);
    nrpc_table_remove(&subs, &s->node);
    pthread_mutex_unlock(&subs_mu);
    /* Out of the table, s is no longer moved by a rebuild: s->sub is ours. */
    natsSubscription_Unsubscribe(s->sub); /* fails harmlessly once closed */
    natsSubscription_Destroy(s->sub);
    free(s);
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
