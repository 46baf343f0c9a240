/* heartbeat.c: progress heartbeats (natsrpc.h, "Progress heartbeats"): the
 * runtime's side, which sends them for a call that is still running, and
 * the pieces every caller shares to watch for them (client.c, outcall.c,
 * the natsrpc CLI). */
#include "runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Subjects remembered as sending heartbeats at most; past it all the
 * learnt ones are forgotten (they are learnt again from the next
 * heartbeat), and no more are expected (nrpc__hb_expect fails). */
#define HB_KNOWN_MAX 1024

int64_t
nrpc__hb_interval(int64_t timeout_ms)
{
    /* A call that gives up before a loss could be seen gains nothing from
     * heartbeats: it asks for none, and the service sends none. */
    return timeout_ms > nrpc__hb_limit(NRPC_HEARTBEAT_MS) ? NRPC_HEARTBEAT_MS : 0;
}

int64_t
nrpc__hb_limit(int64_t interval_ms)
{
    return NRPC_HEARTBEAT_MISSED * interval_ms + interval_ms / 2;
}

int64_t
nrpc__hb_first(int64_t interval_ms)
{
    /* The runtime sends the first one interval_ms after the handler
     * started; half an interval more covers the request's and the
     * heartbeat's trips and the wait in the service's queue. */
    return interval_ms + interval_ms / 2;
}

void
nrpc__hb_lost_message(char *out, size_t size, const char *subject, int64_t silence_ms)
{
    snprintf(out, size,
             "no heartbeat from the replica running %s for %g s: it was lost (the call may have "
             "run)",
             subject, (double)silence_ms / 1000.0);
}

int
nrpc__is_heartbeat(natsMsg *msg)
{
    const char *v = NULL;
    return natsMsgHeader_Get(msg, NRPC_HDR_HEARTBEAT, &v) == NATS_OK;
}

typedef struct {
    nrpc_tnode node; /* keyed by nrpc_hash_str(subject); first */
    int expected;    /* told (nrpc__hb_expect), not learnt: never forgotten */
    char subject[];
} hb_subject;

static hb_subject *
hb_find(const nrpc_table *t, const char *subject)
{
    uint64_t h = nrpc_hash_str(subject);
    nrpc_tnode *n;

    for (n = nrpc_table_get(t, h); n; n = nrpc_table_next(t, n, h))
        if (strcmp(((hb_subject *)n)->subject, subject) == 0)
            return (hb_subject *)n;
    return NULL;
}

int
nrpc__hb_known(const nrpc_table *t, const char *subject)
{
    return hb_find(t, subject) != NULL;
}

/* Forgets the learnt subjects, keeps the expected ones. */
static void
hb_forget_learnt(nrpc_table *t)
{
    nrpc_tnode *n, *keep = NULL;

    while ((n = nrpc_table_take_any(t)) != NULL) {
        if (((hb_subject *)n)->expected) {
            n->next = keep;
            keep = n;
        } else {
            free(n);
        }
    }
    while (keep) {
        n = keep;
        keep = n->next;
        /* Cannot fail: the buckets are still there (the table never shrinks). */
        if (nrpc_table_put(t, n, n->key) != 0)
            free(n);
    }
}

/* Adds subject; -1 when out of memory. */
static int
hb_add(nrpc_table *t, const char *subject, int expected)
{
    size_t len = strlen(subject);
    hb_subject *s = malloc(sizeof *s + len + 1);

    if (s == NULL)
        return -1;
    s->expected = expected;
    memcpy(s->subject, subject, len + 1);
    if (nrpc_table_put(t, &s->node, nrpc_hash_str(subject)) != 0) {
        free(s);
        return -1;
    }
    return 0;
}

void
nrpc__hb_learn(nrpc_table *t, const char *subject)
{
    if (nrpc__hb_known(t, subject))
        return;
    if (t->count >= HB_KNOWN_MAX)
        hb_forget_learnt(t);
    if (t->count < HB_KNOWN_MAX)
        (void)hb_add(t, subject, 0); /* not known: losses are seen from its next heartbeat on */
}

int
nrpc__hb_expect(nrpc_table *t, const char *subject, int expect)
{
    hb_subject *s = hb_find(t, subject);

    if (!expect) {
        if (s != NULL) {
            nrpc_table_remove(t, &s->node);
            free(s);
        }
        return 0;
    }
    if (s != NULL) {
        s->expected = 1; /* learnt before: now kept */
        return 0;
    }
    if (t->count >= HB_KNOWN_MAX)
        hb_forget_learnt(t);
    if (t->count >= HB_KNOWN_MAX)
        return -1; /* as many expected as it holds */
    return hb_add(t, subject, 1);
}

void
nrpc__hb_forget(nrpc_table *t)
{
    nrpc_tnode *n;

    while ((n = nrpc_table_take_any(t)) != NULL)
        free(n);
}

int64_t
nrpc__hb_watch(const nrpc_table *known, const char *subject, int64_t interval_ms, int64_t now_ms)
{
    if (interval_ms <= 0 || known == NULL || !nrpc__hb_known(known, subject))
        return INT64_MAX;
    return now_ms + nrpc__hb_first(interval_ms);
}

/* ---- the runtime's side ------------------------------------------------- */

struct nrpc__call_hb {
    uv_timer_t timer;
    nrpc_call *call; /* not held: the answer stops the timer first */
    uint64_t sent;
};

static void
hb_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
hb_tick(uv_timer_t *t)
{
    struct nrpc__call_hb *hb = t->data;
    nrpc_call *call = hb->call;
    const char *reply = natsMsg_GetReply(call->msg);
    natsMsg *m = NULL;
    char n[24];
    natsStatus s;

    snprintf(n, sizeof n, "%" PRIu64, ++hb->sent);
    s = natsMsg_Create(&m, reply, NULL, NULL, 0);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, NRPC_HDR_HEARTBEAT, n);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(call->svc->nc, m);
    natsMsg_Destroy(m);
    if (s != NATS_OK && hb->sent == 1)
        nrpc_call_log(call, NRPC_LOG_WARN, "%s: cannot send a heartbeat: %s", call->rpc->subject,
                      natsStatus_GetText(s));
}

void
nrpc__call_hb_start(nrpc_call *call)
{
    const char *v = NULL, *reply;
    struct nrpc__call_hb *hb;
    int64_t ms;

    /* Only for a request whose caller asked, with an interval in range:
     * not for events (their reply subject is JetStream's ack), nor
     * nrpc_test_invoke (no message). */
    if (call->answered || call->hb || call->evh || call->msg == NULL || call->svc->nc == NULL)
        return;
    if (natsMsgHeader_Get(call->msg, NRPC_HDR_HEARTBEAT_MS, &v) != NATS_OK ||
        nrpc_parse_int64(v, &ms) != 0 || ms < NRPC_HEARTBEAT_MIN_MS || ms > NRPC_HEARTBEAT_MAX_MS)
        return;
    reply = natsMsg_GetReply(call->msg);
    if (reply == NULL || *reply == '\0')
        return;
    hb = calloc(1, sizeof *hb);
    if (hb == NULL)
        return; /* the caller may see the call as lost: it can retry */
    if (uv_timer_init(call->svc->loop, &hb->timer) != 0) {
        free(hb);
        return;
    }
    hb->call = call;
    hb->timer.data = hb;
    uv_timer_start(&hb->timer, hb_tick, (uint64_t)ms, (uint64_t)ms);
    call->hb = hb;
}

void
nrpc__call_hb_stop(nrpc_call *call)
{
    if (call->hb == NULL)
        return;
    uv_timer_stop(&call->hb->timer);
    uv_close((uv_handle_t *)&call->hb->timer, hb_closed);
    call->hb = NULL;
}
