/* heartbeat.c: progress heartbeats (natsrpc.h, "Progress heartbeats"): the
 * runtime's side, which sends them for a call that is still running, and
 * the pieces every caller shares to watch for them (client.c, outcall.c,
 * the natsrpc CLI). */
#include "runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Subjects remembered as sending heartbeats at most; past it all are
 * forgotten (they are learnt again from the next heartbeat). */
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

int
nrpc__is_heartbeat(natsMsg *msg)
{
    const char *v = NULL;
    return natsMsgHeader_Get(msg, NRPC_HDR_HEARTBEAT, &v) == NATS_OK;
}

typedef struct {
    nrpc_tnode node; /* keyed by nrpc_hash_str(subject); first */
    char subject[];
} hb_subject;

int
nrpc__hb_known(const nrpc_table *t, const char *subject)
{
    uint64_t h = nrpc_hash_str(subject);
    nrpc_tnode *n;

    for (n = nrpc_table_get(t, h); n; n = nrpc_table_next(t, n, h))
        if (strcmp(((hb_subject *)n)->subject, subject) == 0)
            return 1;
    return 0;
}

void
nrpc__hb_learn(nrpc_table *t, const char *subject)
{
    hb_subject *s;
    size_t len;

    if (nrpc__hb_known(t, subject))
        return;
    if (t->count >= HB_KNOWN_MAX)
        nrpc__hb_forget(t);
    len = strlen(subject);
    s = malloc(sizeof *s + len + 1);
    if (s == NULL)
        return; /* not known: losses are seen from its next heartbeat on */
    memcpy(s->subject, subject, len + 1);
    if (nrpc_table_put(t, &s->node, nrpc_hash_str(subject)) != 0)
        free(s);
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
    return now_ms + nrpc__hb_limit(interval_ms);
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
