/* outcall.c: calls a handler makes to other rpcs (nrpc_call_request).
 *
 * They travel on the service's own connection: one inbox subscription
 * "<inbox>.*" per service, a sealed token per call (internal.h). Replies come in on the NATS
 * delivery thread and join the loop thread's queue like requests do, so the
 * table of pending calls and their timers live on the loop thread only and
 * need no lock. Each outgoing call carries the caller's trace id (with a
 * new span id), request id and the smaller of its timeout and the time the
 * caller has left.
 *
 * A disconnect of the service's connection fails every outgoing call sent
 * on it with 503 (nrpc__outcall_sweep): its reply may be lost even when
 * nats.c reconnects at once (see client.c's client_on_disconnected). */
#include "runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct outcall {
    nrpc_tnode node; /* in svc->outcalls by token; first */
    nrpc_service *svc;
    nrpc_call *call; /* held until cb has run */
    nrpc_call_reply_cb cb;
    void *arg;
    uv_timer_t timer; /* at the earlier of deadline_ms and watch_ms */
    int64_t timeout_ms;
    int64_t deadline_ms;     /* monotonic: the timeout */
    int64_t watch_ms;        /* monotonic: lost without a heartbeat by then; INT64_MAX: not watched */
    int64_t hb_ms;           /* heartbeat interval asked for; 0: none */
    int hb_seen;             /* a heartbeat came: watched with nrpc__hb_limit */
    uint64_t gen;            /* svc->conn_gen when sent */
    struct outcall *lost_next; /* on a sweep's list */
    char subject[];
} outcall;

static void
outcall_free_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Runs the handler's callback, exactly once, and forgets o. args and
 * kwargs are borrowed. A call answered meanwhile gets NRPC_CODE_CANCELED. */
static void
outcall_complete(outcall *o, int code, json_t *args, json_t *kwargs, const char *message)
{
    nrpc_call *call = o->call;

    uv_timer_stop(&o->timer);
    o->timer.data = o;
    uv_close((uv_handle_t *)&o->timer, outcall_free_cb);
    if (nrpc_call_answered(call) && code != NRPC_CODE_CANCELED) {
        code = NRPC_CODE_CANCELED;
        args = kwargs = NULL;
        message = "the call was answered before the reply came";
    }
    o->cb(call, code, args, kwargs, message, o->arg);
    nrpc_call_release(call);
}

static void
outcall_fail(outcall *o, int code, const char *message)
{
    outcall_complete(o, code, NULL, NULL, message);
}

static void on_outcall_timeout(uv_timer_t *t);

/* (Re)arms o's timer for the earlier of its deadline and its watch. */
static void
outcall_arm(outcall *o)
{
    int64_t when = o->watch_ms < o->deadline_ms ? o->watch_ms : o->deadline_ms;
    int64_t left = when - nrpc_now_ms();

    uv_timer_start(&o->timer, on_outcall_timeout, (uint64_t)(left > 0 ? left : 0), 0);
}

static void
on_outcall_timeout(uv_timer_t *t)
{
    outcall *o = t->data;
    int64_t now = nrpc_now_ms();
    char m[NRPC_MAX_SUBJECT + 128];

    if (now < o->deadline_ms && now < o->watch_ms) {
        outcall_arm(o); /* a heartbeat moved the watch on */
        return;
    }
    nrpc_table_remove(&o->svc->outcalls, &o->node);
    if (now < o->deadline_ms) {
        nrpc__hb_lost_message(m, sizeof m, o->subject,
                              o->hb_seen ? nrpc__hb_limit(o->hb_ms) : nrpc__hb_first(o->hb_ms));
        outcall_fail(o, NRPC_CODE_UNAVAILABLE, m);
        return;
    }
    snprintf(m, sizeof m, "no reply from %s within %.3g s", o->subject,
             (double)o->timeout_ms / 1000.0);
    outcall_fail(o, NRPC_CODE_TIMEOUT, m);
}

/* Delivery thread: hand the reply to the loop thread. */
static void
on_inbox(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nrpc_service *svc = closure;
    inbound *in = malloc(sizeof *in);
    if (in == NULL) {
        natsMsg_Destroy(msg); /* the call will time out */
        return;
    }
    in->kind = IN_REPLY;
    in->rpc = NULL;
    in->ack = NULL;
    in->msg = msg;
    in->deadline_ms = INT64_MAX;
    nrpc__queue_push(svc, in);
}

void
nrpc__outcall_reply(nrpc_service *svc, natsMsg *msg)
{
    const char *subj = natsMsg_GetSubject(msg), *dot = strrchr(subj, '.');
    uint64_t token = 0;
    outcall *o;
    nrpc__reply r;

    /* "<inbox>.<sealed token>": anything else is not a reply of ours. */
    if (dot == NULL || nrpc__seal_open(&svc->seal, dot + 1, strlen(dot + 1), &token) != 0) {
        nrpc__msg_destroy(msg);
        return;
    }
    if (nrpc__is_heartbeat(msg)) {
        /* Not the reply: the call runs on; watch it from now. */
        o = (outcall *)nrpc_table_get(&svc->outcalls, token);
        if (o) {
            nrpc__hb_learn(&svc->hb_known, o->subject);
            if (o->hb_ms > 0) {
                o->hb_seen = 1;
                o->watch_ms = nrpc_now_ms() + nrpc__hb_limit(o->hb_ms);
                outcall_arm(o);
            }
        }
        natsMsg_Destroy(msg);
        return;
    }
    o = (outcall *)nrpc_table_take(&svc->outcalls, token);

    if (o == NULL) { /* late reply: its call timed out already */
        nrpc__msg_destroy(msg);
        return;
    }
    nrpc__reply_read(msg, &r);
    if (r.no_responders) {
        char m[NRPC_MAX_SUBJECT + 32];
        snprintf(m, sizeof m, "no such rpc: %s", o->subject);
        outcall_fail(o, NRPC_CODE_NOT_FOUND, m);
    } else if (r.code != 0) {
        outcall_fail(o, r.code, r.message);
    } else {
        json_t *args = NULL, *kwargs = NULL;
        char err[256];
        if (nrpc_request_decode(r.data, r.len, &args, &kwargs, err, sizeof err) != 0) {
            char m[NRPC_MAX_SUBJECT + 320];
            snprintf(m, sizeof m, "%s replied with a body that is not [args, kwargs]: %s",
                     o->subject, err);
            outcall_fail(o, NRPC_CODE_INTERNAL, m);
        } else {
            outcall_complete(o, 0, args, kwargs, NULL);
        }
        json_decref(args);
        json_decref(kwargs);
    }
    nrpc__msg_destroy(msg);
}

static nrpc_status
inbox_start(nrpc_service *svc)
{
    char subj[sizeof svc->inbox + 2];

    if (svc->inbox_sub)
        return NRPC_OK;
    if (!svc->seal_ready) { /* once: a call may outlive its subscription */
        if (nrpc__seal_init(&svc->seal) != 0)
            return NRPC_ERR_SYSTEM;
        svc->seal_ready = 1;
    }
    if (nrpc_inbox_new(svc->inbox, sizeof svc->inbox) != NRPC_OK)
        return NRPC_ERR_NATS;
    snprintf(subj, sizeof subj, "%s.*", svc->inbox);
    if (natsConnection_Subscribe(&svc->inbox_sub, svc->nc, subj, on_inbox, svc) != NATS_OK)
        return NRPC_ERR_NATS;
    return NRPC_OK;
}

nrpc_status
nrpc_call_request(nrpc_call *call, const char *subject, json_t *args, json_t *kwargs,
                  int64_t timeout_ms, nrpc_call_reply_cb cb, void *arg)
{
    nrpc_service *svc;
    outcall *o;
    natsMsg *m = NULL;
    char reply[192], tmo[32], sealed[NRPC__SEALED_LEN + 1], *body;
    nrpc_trace tr;
    int64_t left;
    natsStatus s;

    if (call == NULL || subject == NULL || cb == NULL || nrpc_call_answered(call) ||
        !nrpc_subject_is_rpc(subject, strlen(subject))) {
        json_decref(args);
        json_decref(kwargs);
        return call && nrpc_call_answered(call) ? NRPC_ERR_STATE : NRPC_ERR_INVALID_ARG;
    }
    svc = call->svc;
    body = nrpc_reply_encode(args, kwargs); /* the same [args, kwargs] shape */
    if (body == NULL)
        return NRPC_ERR_NOMEM;
    if (svc->nc == NULL || inbox_start(svc) != NRPC_OK) {
        free(body);
        return svc->nc == NULL ? NRPC_ERR_STATE : NRPC_ERR_NATS;
    }
    if (timeout_ms <= 0)
        timeout_ms = 60000;
    left = nrpc_call_time_left_ms(call);
    if (left < timeout_ms)
        timeout_ms = left > 1 ? left : 1; /* never wait past our own caller */
    o = calloc(1, sizeof *o + strlen(subject) + 1);
    if (o == NULL) {
        free(body);
        return NRPC_ERR_NOMEM;
    }
    strcpy(o->subject, subject);
    o->svc = svc;
    o->call = call;
    o->cb = cb;
    o->arg = arg;
    o->timeout_ms = timeout_ms;
    o->deadline_ms = nrpc_now_ms() + timeout_ms;
    o->hb_ms = nrpc__hb_interval(timeout_ms);
    o->watch_ms = nrpc__hb_watch(&svc->hb_known, subject, o->hb_ms, nrpc_now_ms());
    o->node.key = ++svc->next_token;
    /* Read before the publish, as client.c does: a disconnect in between
     * fails a call whose reply may still come, never the other way. */
    o->gen = atomic_load(&svc->conn_gen);
    nrpc__seal_token(&svc->seal, o->node.key, sealed);
    snprintf(reply, sizeof reply, "%s.%s", svc->inbox, sealed);
    snprintf(tmo, sizeof tmo, "%lld", (long long)timeout_ms);
    /* A child span of the caller's trace, or a new trace. */
    nrpc_call_trace_hop(call, &tr);

    s = natsMsg_Create(&m, subject, reply, body, (int)strlen(body));
    free(body);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, NRPC_HDR_TIMEOUT, tmo);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, NRPC_HDR_TRACEPARENT, tr.traceparent);
    if (s == NATS_OK && call->request_id[0])
        s = natsMsgHeader_Set(m, NRPC_HDR_REQUEST_ID, call->request_id);
    if (s == NATS_OK && o->hb_ms > 0) {
        char hb[24];
        snprintf(hb, sizeof hb, "%lld", (long long)o->hb_ms);
        s = natsMsgHeader_Set(m, NRPC_HDR_HEARTBEAT_MS, hb);
    }
    if (s == NATS_OK && nrpc_table_put(&svc->outcalls, &o->node, o->node.key) != 0)
        s = NATS_NO_MEMORY;
    else if (s == NATS_OK) {
        s = natsConnection_PublishMsg(svc->nc, m);
        if (s != NATS_OK)
            nrpc_table_remove(&svc->outcalls, &o->node);
    }
    nrpc__msg_destroy(m);
    if (s != NATS_OK) {
        free(o);
        nrpc_call_log(call, NRPC_LOG_WARN, "request to %s: %s", subject, natsStatus_GetText(s));
        return NRPC_ERR_NATS;
    }
    uv_timer_init(svc->loop, &o->timer);
    o->timer.data = o;
    outcall_arm(o);
    nrpc_call_hold(call);
    nrpc_call_defer(call);
    return NRPC_OK;
}

void
nrpc__outcall_lost(nrpc_service *svc)
{
    nrpc_tnode *n;

    natsSubscription_Destroy(svc->inbox_sub);
    svc->inbox_sub = NULL;
    while ((n = nrpc_table_take_any(&svc->outcalls)) != NULL)
        outcall_fail((outcall *)n, NRPC_CODE_UNAVAILABLE,
                     "NATS connection closed while the request was in flight; the reply may "
                     "have been lost (the call may have run)");
}

void
nrpc__outcall_sweep(nrpc_service *svc)
{
    uint64_t gen = atomic_load(&svc->conn_gen);
    outcall *lost = NULL, *o;
    size_t i;

    if (gen == svc->outcalls_gen)
        return;
    /* Closed for good: the rebuild fails them (nrpc__outcall_lost) once the
     * new connection is there, so the answers they lead to are not lost
     * on the closed one. A reconnecting connection keeps what we publish
     * meanwhile in nats.c's buffer and sends it on the new server. */
    if (svc->nc && natsConnection_IsClosed(svc->nc))
        return;
    svc->outcalls_gen = gen;
    for (i = 0; i < svc->outcalls.nbuckets; i++) {
        nrpc_tnode *n;
        for (n = svc->outcalls.buckets[i]; n; n = n->next)
            if (((outcall *)n)->gen != gen) {
                ((outcall *)n)->lost_next = lost;
                lost = (outcall *)n;
            }
    }
    while ((o = lost) != NULL) {
        lost = o->lost_next;
        nrpc_table_remove(&svc->outcalls, &o->node);
        outcall_fail(o, NRPC_CODE_UNAVAILABLE,
                     "NATS connection lost while the request was in flight; the reply may have "
                     "been lost (the call may have run)");
    }
}

void
nrpc__outcall_stop(nrpc_service *svc)
{
    nrpc_tnode *n;

    if (svc->inbox_sub) {
        natsSubscription_Unsubscribe(svc->inbox_sub);
        natsSubscription_Destroy(svc->inbox_sub);
        svc->inbox_sub = NULL;
    }
    /* Outgoing calls still waiting belong to calls that were answered
     * already (the drain waits for every call): their callbacks are owed a
     * cancellation. */
    while ((n = nrpc_table_take_any(&svc->outcalls)) != NULL)
        outcall_fail((outcall *)n, NRPC_CODE_CANCELED, "the service is stopping");
    nrpc_table_free(&svc->outcalls);
    nrpc__hb_forget(&svc->hb_known);
    nrpc_table_free(&svc->hb_known);
}
