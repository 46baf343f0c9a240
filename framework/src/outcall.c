/* outcall.c: calls a handler makes to other rpcs (nrpc_call_request).
 *
 * They travel on the service's own connection: one inbox subscription
 * "<inbox>.*" per service, a token per call. Replies come in on the NATS
 * delivery thread and join the loop thread's queue like requests do, so the
 * table of pending calls and their timers live on the loop thread only and
 * need no lock. Each outgoing call carries the caller's trace id (with a
 * new span id), request id and the smaller of its timeout and the time the
 * caller has left. */
#include "runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_BUCKETS 1024 /* chains stay short up to many thousands in flight */

typedef struct outcall {
    struct outcall *next; /* hash chain */
    uint64_t token;
    nrpc_service *svc;
    nrpc_call *call;
    nrpc_call_reply_cb cb;
    void *arg;
    uv_timer_t timer;
    int64_t timeout_ms;
    char subject[];
} outcall;

static void
outcall_free_cb(uv_handle_t *h)
{
    free(h->data);
}

static outcall *
table_take(nrpc_service *svc, uint64_t token)
{
    outcall **p;
    if (svc->obuckets == NULL)
        return NULL;
    for (p = &svc->obuckets[token % svc->onbuckets]; *p; p = &(*p)->next) {
        if ((*p)->token == token) {
            outcall *o = *p;
            *p = o->next;
            return o;
        }
    }
    return NULL;
}

/* Runs the handler's callback (unless the call was answered meanwhile) and
 * forgets o. args and kwargs are borrowed. */
static void
outcall_complete(outcall *o, int code, json_t *args, json_t *kwargs, const char *message)
{
    nrpc_call *call = o->call;

    uv_timer_stop(&o->timer);
    o->timer.data = o;
    uv_close((uv_handle_t *)&o->timer, outcall_free_cb);
    if (!call->answered) {
        call->depth++;
        o->cb(call, code, args, kwargs, message, o->arg);
        call->depth--;
        nrpc__call_settle(call);
    }
    nrpc__call_out_done(call);
}

static void
outcall_fail(outcall *o, int code, const char *message)
{
    outcall_complete(o, code, NULL, NULL, message);
}

static void
on_outcall_timeout(uv_timer_t *t)
{
    outcall *o = t->data;
    char m[320];

    table_take(o->svc, o->token);
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
    in->rpc = NULL;
    in->msg = msg;
    in->deadline_ms = INT64_MAX;
    nrpc__queue_push(svc, in);
}

void
nrpc__outcall_reply(nrpc_service *svc, natsMsg *msg)
{
    const char *subj = natsMsg_GetSubject(msg), *dot = strrchr(subj, '.'), *v = NULL;
    uint64_t token = dot ? strtoull(dot + 1, NULL, 16) : 0;
    outcall *o = table_take(svc, token);

    if (o == NULL) { /* late reply: its call timed out already */
        natsMsg_Destroy(msg);
        return;
    }
    if (natsMsg_IsNoResponders(msg)) {
        char m[320];
        snprintf(m, sizeof m, "no such rpc: %s", o->subject);
        outcall_fail(o, NRPC_CODE_NOT_FOUND, m);
    } else if (natsMsgHeader_Get(msg, NRPC_HDR_ERROR_CODE, &v) == NATS_OK && v) {
        const char *text = NULL;
        int code = atoi(v);
        natsMsgHeader_Get(msg, NRPC_HDR_ERROR, &text);
        outcall_fail(o, code >= 400 && code <= 599 ? code : NRPC_CODE_INTERNAL,
                     text ? text : "error");
    } else {
        json_t *args = NULL, *kwargs = NULL;
        char err[256];
        if (nrpc_request_decode(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &args,
                                &kwargs, err, sizeof err) != 0) {
            char m[320];
            snprintf(m, sizeof m, "%s replied with a body that is not [args, kwargs]: %s",
                     o->subject, err);
            outcall_fail(o, NRPC_CODE_INTERNAL, m);
        } else {
            outcall_complete(o, 0, args, kwargs, NULL);
        }
        json_decref(args);
        json_decref(kwargs);
    }
    natsMsg_Destroy(msg);
}

static nrpc_status
inbox_start(nrpc_service *svc)
{
    natsInbox *ib = NULL;
    char subj[128];

    if (svc->inbox_sub)
        return NRPC_OK;
    if (natsInbox_Create(&ib) != NATS_OK)
        return NRPC_ERR_NATS;
    snprintf(svc->inbox, sizeof svc->inbox, "%s", (const char *)ib);
    natsInbox_Destroy(ib);
    snprintf(subj, sizeof subj, "%s.*", svc->inbox);
    svc->obuckets = calloc(OUT_BUCKETS, sizeof *svc->obuckets);
    if (svc->obuckets == NULL)
        return NRPC_ERR_NOMEM;
    svc->onbuckets = OUT_BUCKETS;
    if (natsConnection_Subscribe(&svc->inbox_sub, svc->nc, subj, on_inbox, svc) != NATS_OK) {
        free(svc->obuckets);
        svc->obuckets = NULL;
        return NRPC_ERR_NATS;
    }
    return NRPC_OK;
}

/* A child span of the caller's trace (W3C traceparent), or a new trace. */
static void
make_traceparent(nrpc_call *call, char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char trace[33], span[17];
    int i;

    if (call->trace_id[0]) {
        memcpy(trace, call->trace_id, 33);
    } else {
        for (i = 0; i < 32; i++)
            trace[i] = hex[rand() & 15];
        trace[32] = '\0';
    }
    for (i = 0; i < 16; i++)
        span[i] = hex[rand() & 15];
    span[16] = '\0';
    snprintf(out, len, "00-%s-%s-01", trace, span);
}

nrpc_status
nrpc_call_request(nrpc_call *call, const char *subject, json_t *args, json_t *kwargs,
                  int64_t timeout_ms, nrpc_call_reply_cb cb, void *arg)
{
    nrpc_service *svc;
    outcall *o;
    natsMsg *m = NULL;
    char reply[160], tp[64], tmo[32], *body;
    int64_t left;
    natsStatus s;

    if (call == NULL || subject == NULL || cb == NULL || call->answered) {
        json_decref(args);
        json_decref(kwargs);
        return call && call->answered ? NRPC_ERR_STATE : NRPC_ERR_INVALID_ARG;
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
    o->token = ++svc->next_token;
    o->svc = svc;
    o->call = call;
    o->cb = cb;
    o->arg = arg;
    o->timeout_ms = timeout_ms;
    snprintf(reply, sizeof reply, "%s.%" PRIx64, svc->inbox, o->token);
    snprintf(tmo, sizeof tmo, "%lld", (long long)timeout_ms);
    make_traceparent(call, tp, sizeof tp);

    s = natsMsg_Create(&m, subject, reply, body, (int)strlen(body));
    free(body);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, NRPC_HDR_TIMEOUT, tmo);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, NRPC_HDR_TRACEPARENT, tp);
    if (s == NATS_OK && call->request_id[0])
        s = natsMsgHeader_Set(m, NRPC_HDR_REQUEST_ID, call->request_id);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(svc->nc, m);
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
        free(o);
        nrpc_call_log(call, NRPC_LOG_WARN, "request to %s: %s", subject, natsStatus_GetText(s));
        return NRPC_ERR_NATS;
    }
    uv_timer_init(svc->loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, on_outcall_timeout, (uint64_t)timeout_ms, 0);
    o->next = svc->obuckets[o->token % svc->onbuckets];
    svc->obuckets[o->token % svc->onbuckets] = o;
    call->pending_out++;
    call->deferred = 1;
    return NRPC_OK;
}

void
nrpc__outcall_stop(nrpc_service *svc)
{
    size_t i;

    if (svc->inbox_sub) {
        natsSubscription_Unsubscribe(svc->inbox_sub);
        natsSubscription_Destroy(svc->inbox_sub);
        svc->inbox_sub = NULL;
    }
    /* Calls still waiting belong to calls that were answered already (the
     * drain waits for every call): fail them so their memory is released. */
    for (i = 0; svc->obuckets && i < svc->onbuckets; i++) {
        while (svc->obuckets[i]) {
            outcall *o = svc->obuckets[i];
            svc->obuckets[i] = o->next;
            outcall_fail(o, NRPC_CODE_UNAVAILABLE, "the service is stopping");
        }
    }
    free(svc->obuckets);
    svc->obuckets = NULL;
}
