/* events.c: declared events on NATS JetStream (see "Declaring events" in
 * natsrpc.h): the streams and durable consumers a service needs, emits and
 * their publish acknowledgments, and the handling of delivered events
 * (ack, nak with backoff, dead letters).
 *
 * Threads. Set-up talks to JetStream with nats.c's synchronous API on the
 * loop thread: a few requests at start and after each reconnect. Events
 * and publish acknowledgments arrive on the NATS delivery thread, which
 * only queues them for the loop thread (as it does requests), so pending
 * emits and every handler live on the loop thread without locks.
 *
 * Every name is fixed by the declarations, so replicas and restarts meet
 * the same objects: stream EVENTS_<s> over events.<s>.>, consumer
 * <handler service>__<event> delivering to _NRPC.deliver.<handler
 * service>.<s>.<event> in the queue group <handler service>, and dead
 * letters on deadletter.<handler service>.<s>.<event> in the stream
 * DEADLETTER_<handler service>. A consumer that disappears (a server
 * restarted without its store) is made again on the next reconnect, and
 * the subscription, on the same deliver subject, keeps working. */
#include "runtime.h"
#include "bind.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_DELIVER 5
#define DEFAULT_BACKOFF_MS 500
#define BACKOFF_MAX_MS 60000
#define DEFAULT_ACK_WAIT_MS 30000
#define DEFAULT_EMIT_TIMEOUT_MS 5000
#define DEFAULT_MAX_AGE_S (7 * 24 * 3600)
#define DUPLICATE_WINDOW_S 120
#define MAX_EMITTING 65536 /* emits waiting for their acknowledgment */
#define JS_API_WAIT_MS 2000
#define SETUP_RETRY_MIN_MS 200
#define SETUP_RETRY_MAX_MS 5000
#define NS_PER_MS 1000000LL

typedef struct pending_emit {
    nrpc_tnode node; /* in svc->emits by nrpc_hash_str(id); first */
    struct pending_emit *prev, *next; /* oldest first: the sweep's order */
    int64_t deadline_ms;
    nrpc_emit_cb cb;
    void *arg;
    char id[];
} pending_emit;

static char *
xprintf(const char *fmt, const char *a, const char *b, const char *c)
{
    size_t n = strlen(fmt) + strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, fmt, a, b, c);
    return s;
}

/* ---- set-up and tear-down ---------------------------------------------- */

/* Checks a declared list of events or topics (what: "event" or "topic"):
 * names, no name twice, access and publish in nrpc_rpc.access's form. The
 * count goes to *n. -1 with a log line naming the culprit. */
static int
check_declared(const nrpc_service_def *def, const nrpc_event *list, const char *what, size_t *n)
{
    size_t i, j;

    for (i = 0; list && list[i].name; i++) {
        const nrpc_event *e = &list[i];
        if (!nrpc__name_ok(e->name)) {
            nrpc_log(NRPC_LOG_ERROR, "%s #%zu of %s needs a name of letters, digits, '_' and '-'",
                     what, i, def->name);
            return -1;
        }
        for (j = 0; j < i; j++)
            if (strcmp(e->name, list[j].name) == 0) {
                nrpc_log(NRPC_LOG_ERROR, "%s declares the %s %s twice", def->name, what, e->name);
                return -1;
            }
        if (!nrpc_access_valid(e->access) || !nrpc_access_valid(e->publish)) {
            nrpc_log(NRPC_LOG_ERROR,
                     "%s.%s: access and publish must be \"public\", \"authenticated\", "
                     "space-separated scopes or NULL",
                     def->name, e->name);
            return -1;
        }
    }
    *n = i;
    return 0;
}

nrpc_status
nrpc__events_new(nrpc_service *svc)
{
    const nrpc_service_def *def = &svc->def;
    size_t n = 0, i, j;
    char err[256];

    svc->ev_max_deliver = (int)nrpc_env_int("NRPC_EVENT_MAX_DELIVER", DEFAULT_MAX_DELIVER, 1, 1000);
    svc->ev_backoff_ms = nrpc_env_int("NRPC_EVENT_BACKOFF_MS", DEFAULT_BACKOFF_MS, 1, 600000);
    svc->ev_ack_wait_ms =
        nrpc_env_int("NRPC_EVENT_ACK_WAIT_MS", DEFAULT_ACK_WAIT_MS, 1000, 3600 * 1000);
    svc->emit_timeout_ms =
        nrpc_env_int("NRPC_EMIT_TIMEOUT_MS", DEFAULT_EMIT_TIMEOUT_MS, 100, 600000);
    if (check_declared(def, def->emits, "event", &svc->nemits) != 0 ||
        check_declared(def, def->topics, "topic", &svc->ntopics) != 0)
        return NRPC_ERR_INVALID_ARG;
    for (i = 0; i < svc->nemits; i++)
        for (j = 0; j < svc->ntopics; j++)
            if (strcmp(def->emits[i].name, def->topics[j].name) == 0) {
                nrpc_log(NRPC_LOG_ERROR, "%s declares %s both as an event and as a topic",
                         def->name, def->emits[i].name);
                return NRPC_ERR_INVALID_ARG;
            }
    while (def->handles && def->handles[n].service)
        n++;
    if (n == 0)
        return NRPC_OK;
    svc->evhs = calloc(n, sizeof *svc->evhs);
    if (svc->evhs == NULL)
        return NRPC_ERR_NOMEM;
    svc->nevhs = n;
    for (i = 0; i < n; i++) {
        const nrpc_event_handler *h = &def->handles[i];
        evh_entry *v = &svc->evhs[i];

        pthread_mutex_init(&v->e.stats.mu, NULL);
        v->h = h;
        v->e.svc = svc;
        v->e.rpc = &v->rpc;
        if (!nrpc__name_ok(h->service) || !nrpc__name_ok(h->event) || h->handler == NULL) {
            nrpc_log(NRPC_LOG_ERROR, "event handler #%zu of %s needs a service and an event "
                                     "named with letters, digits, '_' and '-', and a handler",
                     i, def->name);
            return NRPC_ERR_INVALID_ARG;
        }
        for (j = 0; j < i; j++)
            if (strcmp(h->service, def->handles[j].service) == 0 &&
                strcmp(h->event, def->handles[j].event) == 0) {
                nrpc_log(NRPC_LOG_ERROR, "%s handles %s.%s twice", def->name, h->service,
                         h->event);
                return NRPC_ERR_INVALID_ARG;
            }
        v->rpc.name = h->event;
        v->rpc.handler = h->handler;
        v->rpc.params = h->params;
        v->rpc.description = h->description;
        v->rpc.flags = h->params == NULL && h->flags == 0 ? NRPC_VARARGS | NRPC_VARKW : h->flags;
        while (h->params && h->params[v->e.nparams].name)
            v->e.nparams++;
        v->e.subject = xprintf(NRPC_EVENT_PREFIX "%s.%s%s", h->service, h->event, "");
        v->stream = xprintf(NRPC_STREAM_PREFIX "%s%s%s", h->service, "", "");
        v->consumer = xprintf("%s__%s%s", def->name, h->event, "");
        v->deliver = xprintf("_NRPC.deliver.%s.%s.%s", def->name, h->service, h->event);
        v->deadletter = xprintf(NRPC_DEADLETTER_PREFIX "%s.%s.%s", def->name, h->service, h->event);
        if (!v->e.subject || !v->stream || !v->consumer || !v->deliver || !v->deadletter)
            return NRPC_ERR_NOMEM;
        if (strlen(v->deliver) > NRPC_MAX_SUBJECT || strlen(v->deadletter) > NRPC_MAX_SUBJECT) {
            nrpc_log(NRPC_LOG_ERROR, "%s: the names of %s.%s are too long for NATS subjects",
                     def->name, h->service, h->event);
            return NRPC_ERR_INVALID_ARG;
        }
        if (nrpc__parse_defaults(h->params, &v->e.defaults, err, sizeof err) != 0) {
            nrpc_log(NRPC_LOG_ERROR, "%s: %s", v->e.subject, err);
            return NRPC_ERR_INVALID_ARG;
        }
    }
    return NRPC_OK;
}

void
nrpc__events_free(nrpc_service *svc)
{
    size_t i;

    for (i = 0; i < svc->nevhs; i++) {
        evh_entry *v = &svc->evhs[i];
        natsSubscription_Destroy(v->sub);
        pthread_mutex_destroy(&v->e.stats.mu);
        free(v->e.subject);
        free(v->stream);
        free(v->consumer);
        free(v->deliver);
        free(v->deadletter);
        nrpc__free_defaults(v->e.defaults, v->e.nparams);
    }
    free(svc->evhs);
    svc->evhs = NULL;
    svc->nevhs = 0;
    nrpc_table_free(&svc->emits);
}

static int
events_declared(nrpc_service *svc)
{
    return svc->nemits > 0 || svc->nevhs > 0;
}

/* 0, or -1 after logging what JetStream said. */
static int
js_check(natsStatus s, jsErrCode jerr, const char *what, const char *name)
{
    if (s == NATS_OK)
        return 0;
    nrpc_log(NRPC_LOG_WARN, "JetStream: %s %s: %s (error code %d)%s", what, name,
             natsStatus_GetText(s), (int)jerr,
             s == NATS_NO_RESPONDERS ? "; is nats-server running with -js?" : "");
    return -1;
}

/* Makes sure the stream exists: one of events over "<prefix><service>.>"
 * or of dead letters. Its settings are only set when it is made. */
static int
ensure_stream(nrpc_service *svc, const char *stream, const char *subject_prefix,
              const char *service)
{
    jsStreamInfo *si = NULL;
    jsStreamConfig cfg;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, svc->js, stream, NULL, &jerr);
    char subject[NRPC_MAX_SUBJECT + 8];
    const char *subjects[1] = {subject};

    jsStreamInfo_Destroy(si);
    if (s == NATS_OK)
        return 0;
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
        return js_check(s, jerr, "looking up stream", stream);
    snprintf(subject, sizeof subject, "%s%s.>", subject_prefix, service);
    jsStreamConfig_Init(&cfg);
    cfg.Name = stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.MaxAge = nrpc_env_int("NRPC_EVENT_MAX_AGE_S", DEFAULT_MAX_AGE_S, 1, 100LL * 365 * 86400) *
                 1000 * NS_PER_MS;
    cfg.Duplicates = (int64_t)DUPLICATE_WINDOW_S * 1000 * NS_PER_MS;
    si = NULL;
    s = js_AddStream(&si, svc->js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK) {
        nrpc_log(NRPC_LOG_INFO, "JetStream: stream %s created over %s", stream, subject);
        return 0;
    }
    /* A replica may have made it meanwhile. */
    si = NULL;
    if (js_GetStreamInfo(&si, svc->js, stream, NULL, NULL) == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    return js_check(s, jerr, "creating stream", stream);
}

static int
ensure_consumer(nrpc_service *svc, evh_entry *v)
{
    jsConsumerInfo *ci = NULL;
    jsConsumerConfig cc;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, svc->js, v->stream, v->consumer, NULL, &jerr);

    jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK)
        return 0;
    if (s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr)
        return js_check(s, jerr, "looking up consumer", v->consumer);
    jsConsumerConfig_Init(&cc);
    cc.Durable = v->consumer;
    cc.Description = v->h->description;
    cc.DeliverSubject = v->deliver;
    cc.DeliverGroup = svc->def.name;
    /* Events emitted from now on: a new handler does not replay the stream. */
    cc.DeliverPolicy = js_DeliverNew;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = svc->ev_ack_wait_ms * NS_PER_MS;
    /* Redelivery is counted here, not by the server: the last try goes to
     * the dead letters (an event the service dies on included). */
    cc.MaxDeliver = -1;
    cc.FilterSubject = v->e.subject;
    ci = NULL;
    s = js_AddConsumer(&ci, svc->js, v->stream, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK) {
        nrpc_log(NRPC_LOG_INFO, "JetStream: consumer %s created on %s for %s", v->consumer,
                 v->stream, v->e.subject);
        return 0;
    }
    ci = NULL;
    if (js_GetConsumerInfo(&ci, svc->js, v->stream, v->consumer, NULL, NULL) == NATS_OK) {
        jsConsumerInfo_Destroy(ci);
        return 0;
    }
    return js_check(s, jerr, "creating consumer", v->consumer);
}

/* NATS delivery thread: one event for a handler. Counted in flight like a
 * request, never refused: the consumer's ack window bounds them. */
static void
on_event(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    evh_entry *v = closure;
    nrpc_service *svc = v->e.svc;
    inbound *in = calloc(1, sizeof *in);

    if (in == NULL) {
        natsMsg_Destroy(msg); /* redelivered after the ack wait */
        return;
    }
    atomic_fetch_add(&svc->in_flight, 1);
    pthread_mutex_lock(&v->e.stats.mu);
    v->e.stats.in_flight++;
    pthread_mutex_unlock(&v->e.stats.mu);
    in->kind = IN_EVENT;
    in->rpc = &v->e;
    in->msg = msg;
    in->deadline_ms = INT64_MAX;
    nrpc__queue_push(svc, in);
}

static int
ensure_subscribed(nrpc_service *svc, evh_entry *v)
{
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;

    if (v->sub)
        return 0;
    jsSubOptions_Init(&so);
    so.Stream = v->stream;
    so.Consumer = v->consumer; /* bound: nats.c never deletes it */
    so.Queue = svc->def.name;
    so.ManualAck = true;
    s = js_Subscribe(&v->sub, svc->js, v->e.subject, on_event, v, NULL, &so, &jerr);
    return js_check(s, jerr, "subscribing consumer", v->consumer);
}

/* Everything declared, once. 0 when all is in place. */
static int
events_ensure(nrpc_service *svc)
{
    char stream[NRPC_MAX_SUBJECT + 16];
    size_t i;
    int rc = 0;

    if (svc->js == NULL || natsConnection_Status(svc->nc) != NATS_CONN_STATUS_CONNECTED)
        return -1;
    if (svc->nemits > 0) {
        snprintf(stream, sizeof stream, NRPC_STREAM_PREFIX "%s", svc->def.name);
        rc |= ensure_stream(svc, stream, NRPC_EVENT_PREFIX, svc->def.name);
    }
    if (svc->nevhs > 0) {
        snprintf(stream, sizeof stream, NRPC_DEADLETTER_STREAM_PREFIX "%s", svc->def.name);
        rc |= ensure_stream(svc, stream, NRPC_DEADLETTER_PREFIX, svc->def.name);
    }
    for (i = 0; i < svc->nevhs && !svc->draining; i++) {
        evh_entry *v = &svc->evhs[i];
        /* The emitting service may not have started yet: its stream is made
         * by whoever comes first, with the same settings. */
        if (ensure_stream(svc, v->stream, NRPC_EVENT_PREFIX, v->h->service) != 0 ||
            ensure_consumer(svc, v) != 0 || ensure_subscribed(svc, v) != 0) {
            rc = -1;
            continue;
        }
        v->ready = 1;
    }
    return rc;
}

static void events_setup(nrpc_service *svc);

static void
on_events_timer(uv_timer_t *t)
{
    events_setup(t->data);
}

/* Loop thread: ensure, or try again later with backoff. */
static void
events_setup(nrpc_service *svc)
{
    if (!events_declared(svc) || svc->draining || svc->nc == NULL)
        return;
    uv_timer_stop(&svc->events_timer);
    if (events_ensure(svc) == 0) {
        if (!svc->events_ready)
            nrpc_log(NRPC_LOG_INFO, "events: %zu emitted, %zu handled, on JetStream",
                     svc->nemits, svc->nevhs);
        svc->events_ready = 1;
        svc->events_attempts = 0;
        return;
    }
    svc->events_attempts++;
    if (svc->events_attempts == 1 || svc->events_attempts % 10 == 0)
        nrpc_log(NRPC_LOG_WARN, "events: JetStream set-up incomplete (attempt %d); retrying",
                 svc->events_attempts);
    uv_timer_start(&svc->events_timer, on_events_timer,
                   (uint64_t)nrpc_backoff_ms(svc->events_attempts, SETUP_RETRY_MIN_MS,
                                             SETUP_RETRY_MAX_MS),
                   0);
}

static void
on_events_async(uv_async_t *a)
{
    events_setup(a->data);
}

static void on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

void
nrpc__events_loop_setup(nrpc_service *svc)
{
    uv_async_init(svc->loop, &svc->events_async, on_events_async);
    svc->events_async.data = svc;
    uv_unref((uv_handle_t *)&svc->events_async); /* the loop lives for other reasons */
    uv_timer_init(svc->loop, &svc->events_timer);
    svc->events_timer.data = svc;
    uv_timer_init(svc->loop, &svc->emit_sweep);
    svc->emit_sweep.data = svc;
}

void
nrpc__events_connected(nrpc_service *svc)
{
    jsOptions jo;

    if (svc->nc == NULL || svc->js != NULL)
        return;
    jsOptions_Init(&jo);
    jo.Wait = JS_API_WAIT_MS;
    jo.PublishAsync.MaxPending = MAX_EMITTING;
    jo.PublishAsync.AckHandler = on_puback;
    jo.PublishAsync.AckHandlerClosure = svc;
    jo.PublishAsync.StallWait = 1; /* never hold the loop: fail instead */
    if (natsConnection_JetStream(&svc->js, svc->nc, &jo) != NATS_OK) {
        nrpc_log(NRPC_LOG_ERROR, "events: cannot make a JetStream context");
        svc->js = NULL;
        return;
    }
    events_setup(svc);
}

void
nrpc__events_reconnected(nrpc_service *svc)
{
    if (events_declared(svc))
        uv_async_send(&svc->events_async);
}

void
nrpc__events_drain(nrpc_service *svc)
{
    size_t i;
    uv_timer_stop(&svc->events_timer);
    for (i = 0; i < svc->nevhs; i++)
        if (svc->evhs[i].sub)
            natsSubscription_Drain(svc->evhs[i].sub);
}

int
nrpc__events_drained(nrpc_service *svc)
{
    size_t i;
    for (i = 0; i < svc->nevhs; i++)
        if (svc->evhs[i].sub &&
            natsSubscription_DrainCompletionStatus(svc->evhs[i].sub) == NATS_ILLEGAL_STATE)
            return 0;
    return 1;
}

/* ---- emits ------------------------------------------------------------- */

static void
emit_unlink(nrpc_service *svc, pending_emit *pe)
{
    nrpc_table_remove(&svc->emits, &pe->node);
    if (pe->prev)
        pe->prev->next = pe->next;
    else
        svc->emit_head = pe->next;
    if (pe->next)
        pe->next->prev = pe->prev;
    else
        svc->emit_tail = pe->prev;
    svc->nemitting--;
}

/* The one end of an emit: its callback, then its memory. */
static void
emit_finish(nrpc_service *svc, pending_emit *pe, int code, const char *error)
{
    if (code != 0 && code != NRPC_CODE_CANCELED)
        atomic_fetch_add(&svc->emit_errors, 1);
    if (pe->cb)
        pe->cb(svc, code, code ? error : NULL, pe->arg);
    else if (code != 0)
        nrpc_log(NRPC_LOG_WARN, "event %s not stored: %s", pe->id, error);
    free(pe);
}

static void
on_emit_sweep(uv_timer_t *t)
{
    nrpc_service *svc = t->data;
    int64_t now = nrpc_now_ms();
    char m[128];

    while (svc->emit_head && svc->emit_head->deadline_ms <= now) {
        pending_emit *pe = svc->emit_head;
        emit_unlink(svc, pe);
        snprintf(m, sizeof m, "no acknowledgment from JetStream within %" PRId64 " ms",
                 svc->emit_timeout_ms);
        emit_finish(svc, pe, NRPC_CODE_TIMEOUT, m);
    }
    if (svc->emit_head)
        uv_timer_start(&svc->emit_sweep, on_emit_sweep,
                       (uint64_t)(svc->emit_head->deadline_ms - now), 0);
}

/* NATS delivery thread: a publish acknowledgment, for the loop. */
static void
on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    nrpc_service *svc = closure;
    const char *id = NULL;
    inbound *in = NULL;
    puback *a = NULL;

    if (natsMsgHeader_Get(msg, NRPC_HDR_MSG_ID, &id) != NATS_OK || id == NULL)
        goto out;
    in = calloc(1, sizeof *in);
    a = calloc(1, sizeof *a + strlen(id) + 1);
    if (in == NULL || a == NULL) {
        free(in);
        free(a);
        goto out; /* the sweep ends it with 504 */
    }
    strcpy(a->id, id);
    if (pa != NULL) {
        a->seq = pa->Sequence;
        a->duplicate = pa->Duplicate;
    } else {
        a->code = NRPC_CODE_UNAVAILABLE;
        snprintf(a->error, sizeof a->error, "JetStream did not store it: %s",
                 pae && pae->ErrText && *pae->ErrText ? pae->ErrText
                 : pae && pae->Err == NATS_NO_RESPONDERS
                     ? "no stream for the subject (is nats-server running with -js?)"
                 : pae ? natsStatus_GetText(pae->Err)
                       : "unknown error");
    }
    in->kind = IN_PUBACK;
    in->ack = a;
    nrpc__queue_push(svc, in);
out:
    natsMsg_Destroy(msg);
}

void
nrpc__event_puback(nrpc_service *svc, puback *a)
{
    uint64_t key = nrpc_hash_str(a->id);
    nrpc_tnode *n;

    for (n = nrpc_table_get(&svc->emits, key); n; n = nrpc_table_next(&svc->emits, n, key)) {
        pending_emit *pe = (pending_emit *)n;
        if (strcmp(pe->id, a->id) == 0) {
            emit_unlink(svc, pe);
            if (a->code == 0)
                atomic_fetch_add(&svc->emitted, 1);
            emit_finish(svc, pe, a->code, a->error);
            break;
        }
    }
    free(a);
}

void
nrpc__event_new_id(char out[NRPC_EVENT_ID_LEN + 1])
{
    nrpc_random_hex(out, NRPC_EVENT_ID_LEN);
    out[NRPC_EVENT_ID_LEN] = '\0';
}
/* Publishes data on subject with Nats-Msg-Id id and the extra headers
 * (name, value pairs, NULL-terminated) and tracks the acknowledgment. */
static nrpc_status
emit_start(nrpc_service *svc, const char *subject, const char *id, const char *data, size_t len,
           const char *const *headers, nrpc_emit_cb cb, void *arg)
{
    natsMsg *m = NULL;
    pending_emit *pe;
    natsStatus s;

    if (svc->nc == NULL || svc->js == NULL)
        return NRPC_ERR_STATE;
    if (svc->nemitting >= MAX_EMITTING) {
        nrpc_log(NRPC_LOG_WARN, "emit on %s refused: %d emits wait for JetStream", subject,
                 svc->nemitting);
        return NRPC_ERR_STATE;
    }
    pe = calloc(1, sizeof *pe + strlen(id) + 1);
    if (pe == NULL)
        return NRPC_ERR_NOMEM;
    strcpy(pe->id, id);
    s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, NRPC_HDR_MSG_ID, id);
    for (; s == NATS_OK && headers && headers[0]; headers += 2)
        s = natsMsgHeader_Set(m, headers[0], headers[1]);
    if (s == NATS_OK && nrpc_table_put(&svc->emits, &pe->node, nrpc_hash_str(id)) != 0)
        s = NATS_NO_MEMORY;
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        free(pe);
        return s == NATS_NO_MEMORY ? NRPC_ERR_NOMEM : NRPC_ERR_NATS;
    }
    pe->cb = cb;
    pe->arg = arg;
    pe->deadline_ms = nrpc_now_ms() + svc->emit_timeout_ms;
    pe->prev = svc->emit_tail;
    if (svc->emit_tail)
        svc->emit_tail->next = pe;
    else
        svc->emit_head = pe;
    svc->emit_tail = pe;
    svc->nemitting++;
    s = js_PublishMsgAsync(svc->js, &m, NULL);
    natsMsg_Destroy(m); /* NULL when nats.c took it */
    if (s != NATS_OK) {
        emit_unlink(svc, pe);
        free(pe);
        nrpc_log(NRPC_LOG_WARN, "emit on %s: %s", subject, natsStatus_GetText(s));
        return s == NATS_MAX_PAYLOAD ? NRPC_ERR_INVALID_ARG : NRPC_ERR_NATS;
    }
    if (!uv_is_active((uv_handle_t *)&svc->emit_sweep))
        uv_timer_start(&svc->emit_sweep, on_emit_sweep, (uint64_t)svc->emit_timeout_ms, 0);
    return NRPC_OK;
}

nrpc_status
nrpc_service_emit_text(nrpc_service *svc, const char *event, const char *id, const char *body,
                       size_t len, nrpc_emit_cb cb, void *arg)
{
    char subject[NRPC_MAX_SUBJECT + 1], rid[NRPC_EVENT_ID_LEN + 1];
    size_t i;

    if (svc == NULL || event == NULL || (body == NULL && len > 0) || (id && !nrpc_request_id_valid(id)))
        return NRPC_ERR_INVALID_ARG;
    for (i = 0; i < svc->nemits; i++)
        if (strcmp(svc->def.emits[i].name, event) == 0)
            break;
    if (i == svc->nemits) {
        nrpc_log(NRPC_LOG_ERROR, "%s emits %s, which it does not declare", svc->def.name, event);
        return NRPC_ERR_INVALID_ARG;
    }
    if ((size_t)snprintf(subject, sizeof subject, NRPC_EVENT_PREFIX "%s.%s", svc->def.name,
                         event) >= sizeof subject)
        return NRPC_ERR_INVALID_ARG;
    if (id == NULL) {
        nrpc__event_new_id(rid);
        id = rid;
    }
    return emit_start(svc, subject, id, body ? body : "", len, NULL, cb, arg);
}

nrpc_status
nrpc_service_emit(nrpc_service *svc, const char *event, const char *id, json_t *args,
                  json_t *kwargs, nrpc_emit_cb cb, void *arg)
{
    char *text = NULL;
    nrpc_status st = NRPC_ERR_INVALID_ARG;

    if ((args == NULL || json_is_array(args)) && (kwargs == NULL || json_is_object(kwargs))) {
        text = nrpc_reply_encode(args, kwargs); /* steals both */
        args = kwargs = NULL;
        st = text ? nrpc_service_emit_text(svc, event, id, text, strlen(text), cb, arg)
                  : NRPC_ERR_NOMEM;
    }
    json_decref(args);
    json_decref(kwargs);
    free(text);
    return st;
}

/* Every pending emit ends now, with code. */
static void
emits_end_all(nrpc_service *svc, int code, const char *why)
{
    while (svc->emit_head) {
        pending_emit *pe = svc->emit_head;
        emit_unlink(svc, pe);
        emit_finish(svc, pe, code, why);
    }
    uv_timer_stop(&svc->emit_sweep);
}

void
nrpc__events_stop(nrpc_service *svc, int final)
{
    nrpc_call *c;
    size_t i;

    /* First what holds messages of the subscriptions: dead letters waiting
     * (canceled: the event goes back) and events being handled, whose
     * answer can no longer reach the server. Then the subscriptions. */
    if (final)
        emits_end_all(svc, NRPC_CODE_CANCELED, "the service is stopping");
    else
        emits_end_all(svc, NRPC_CODE_UNAVAILABLE, "the NATS connection was replaced");
    for (c = svc->live; c; c = c->next)
        if (c->evh && c->msg) {
            natsMsg_Destroy(c->msg);
            c->msg = NULL;
        }
    for (i = 0; i < svc->nevhs; i++) {
        natsSubscription_Destroy(svc->evhs[i].sub);
        svc->evhs[i].sub = NULL;
        svc->evhs[i].ready = 0;
    }
    jsCtx_Destroy(svc->js);
    svc->js = NULL;
    svc->events_ready = 0;
    uv_timer_stop(&svc->events_timer);
}

/* ---- handling ---------------------------------------------------------- */

void
nrpc__event_run(nrpc_service *svc, evh_entry *v, natsMsg *msg)
{
    jsMsgMetaData *md = NULL;
    const char *id = NULL;
    nrpc_call *call = nrpc__call_new(svc, &v->e, msg, nrpc_now_ms() + svc->ev_ack_wait_ms);
    size_t i;

    if (call == NULL) {
        nrpc__event_return(msg);
        nrpc__stats_record(&v->e, 0, NRPC_CODE_UNAVAILABLE, "out of memory");
        atomic_fetch_sub(&svc->in_flight, 1);
        return;
    }
    call->evh = v;
    call->attempt = 1;
    if (natsMsg_GetMetaData(&md, msg) == NATS_OK) {
        call->attempt = (int)(md->NumDelivered > 1000000 ? 1000000 : md->NumDelivered);
        call->stream_seq = md->Sequence.Stream;
        jsMsgMetaData_Destroy(md);
    }
    if (natsMsgHeader_Get(msg, NRPC_HDR_MSG_ID, &id) == NATS_OK && id) {
        for (i = 0; id[i] && i < sizeof call->event_id - 1; i++)
            call->event_id[i] = (id[i] > 32 && id[i] < 127) ? id[i] : '_';
        call->event_id[i] = '\0';
    }
    if (call->attempt > 1) {
        pthread_mutex_lock(&v->e.stats.mu);
        v->redelivered++;
        pthread_mutex_unlock(&v->e.stats.mu);
    }
    if (call->attempt > svc->ev_max_deliver) {
        char m[160];
        /* Every earlier delivery went unanswered: the handler hung or the
         * service died on it. Not again. */
        snprintf(m, sizeof m, "%s: delivered %d times without an answer", v->e.subject,
                 call->attempt - 1);
        nrpc__call_abandon(call, NRPC_CODE_INTERNAL, NULL, m);
        return;
    }
    nrpc__call_run(call, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
}

void
nrpc__event_return(natsMsg *msg)
{
    natsMsg_Nak(msg, NULL);
    natsMsg_Destroy(msg);
}

typedef struct {
    nrpc_service *svc;
    evh_entry *evh;
    natsMsg *msg; /* the event, acknowledged once its dead letter is stored */
    int attempt;
} dead_letter;

static void
dead_letter_done(nrpc_service *svc, int code, const char *error, void *arg)
{
    dead_letter *d = arg;

    if (code == 0) {
        natsMsg_Term(d->msg, NULL);
        pthread_mutex_lock(&d->evh->e.stats.mu);
        d->evh->dead_letters++;
        pthread_mutex_unlock(&d->evh->e.stats.mu);
    } else {
        if (code != NRPC_CODE_CANCELED)
            nrpc_log(NRPC_LOG_WARN, "%s: dead letter not stored (%s); the event comes back",
                     d->evh->deadletter, error);
        pthread_mutex_lock(&d->evh->e.stats.mu);
        d->evh->dead_letter_errors++;
        pthread_mutex_unlock(&d->evh->e.stats.mu);
        natsMsg_NakWithDelay(d->msg,
                             nrpc_backoff_ms(d->attempt, d->svc->ev_backoff_ms, BACKOFF_MAX_MS),
                             NULL);
    }
    natsMsg_Destroy(d->msg);
    free(d);
}

/* Stores the event under the dead-letter subject, then ends it. */
static void
event_dead_letter(nrpc_call *call, natsMsg *msg, int code, const char *message)
{
    nrpc_service *svc = call->svc;
    evh_entry *v = call->evh;
    char id[NRPC_MAX_SUBJECT + 96], seq[24], tries[16], err[300];
    const char *headers[11];
    dead_letter *d = calloc(1, sizeof *d);
    nrpc_status st = NRPC_ERR_NOMEM;

    snprintf(seq, sizeof seq, "%" PRIu64, call->stream_seq);
    snprintf(tries, sizeof tries, "%d", call->attempt);
    snprintf(err, sizeof err, "%d %s", code, message ? message : "");
    /* One dead letter per event and handling service, whoever sends it. */
    snprintf(id, sizeof id, "%s:%s", svc->def.name, call->event_id[0] ? call->event_id : seq);
    for (char *p = err; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    headers[0] = NRPC_HDR_EVENT_ID;
    headers[1] = call->event_id;
    headers[2] = NRPC_HDR_EVENT_SUBJECT;
    headers[3] = v->e.subject;
    headers[4] = NRPC_HDR_EVENT_SEQ;
    headers[5] = seq;
    headers[6] = NRPC_HDR_DELIVERIES;
    headers[7] = tries;
    headers[8] = NRPC_HDR_EVENT_ERROR;
    headers[9] = err;
    headers[10] = NULL;
    if (d) {
        d->svc = svc;
        d->evh = v;
        d->msg = msg;
        d->attempt = call->attempt;
        st = emit_start(svc, v->deadletter, strlen(id) <= NRPC_REQUEST_ID_MAX ? id : seq,
                        natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), headers,
                        dead_letter_done, d);
    }
    nrpc_call_log(call, NRPC_LOG_WARN, "%s: event %s moved to %s after %d deliveries: %s",
                  v->e.subject, call->event_id[0] ? call->event_id : seq, v->deadletter,
                  call->attempt, err);
    if (st != NRPC_OK) {
        free(d);
        natsMsg_NakWithDelay(msg, nrpc_backoff_ms(call->attempt, svc->ev_backoff_ms,
                                                  BACKOFF_MAX_MS),
                             NULL);
        natsMsg_Destroy(msg);
    }
}

void
nrpc__event_answer(nrpc_call *call, int code, const char *message)
{
    nrpc_service *svc = call->svc;
    natsMsg *msg = call->msg;

    call->msg = NULL; /* the acknowledgment may outlive the call */
    if (msg == NULL)
        return;
    if (svc->nc == NULL) {
        natsMsg_Destroy(msg);
        return;
    }
    if (code == 0) {
        natsMsg_Ack(msg, NULL);
        natsMsg_Destroy(msg);
    } else if (code == NRPC_CODE_BAD_REQUEST || call->attempt >= svc->ev_max_deliver) {
        /* A body that does not bind never will; the last try is the last. */
        event_dead_letter(call, msg, code, message);
    } else {
        natsMsg_NakWithDelay(
            msg, nrpc_backoff_ms(call->attempt, svc->ev_backoff_ms, BACKOFF_MAX_MS), NULL);
        natsMsg_Destroy(msg);
    }
}

const char *
nrpc_event_id(nrpc_call *call)
{
    return call && call->evh && call->event_id[0] ? call->event_id : NULL;
}

int
nrpc_event_attempt(nrpc_call *call)
{
    return call && call->evh ? call->attempt : 0;
}

/* ---- discovery --------------------------------------------------------- */

/* What INFO publishes: "emits" or "handles". New. */
json_t *
nrpc__events_info(nrpc_service *svc, const char *what)
{
    json_t *list = json_array();
    size_t i;

    if (strcmp(what, "emits") == 0 || strcmp(what, "topics") == 0) {
        int emits = what[0] == 'e';
        const nrpc_event *decl = emits ? svc->def.emits : svc->def.topics;
        size_t n = emits ? svc->nemits : svc->ntopics;
        for (i = 0; i < n; i++) {
            const nrpc_event *e = &decl[i];
            char subj[NRPC_MAX_SUBJECT + 1];
            json_t *o;
            snprintf(subj, sizeof subj, NRPC_EVENT_PREFIX "%s.%s", svc->def.name, e->name);
            /* publish absent: nobody but the service publishes on it. */
            o = json_pack("{s:s, s:s, s:s, s:s}", "name", e->name, "subject", subj,
                          "description", e->description ? e->description : "", "access",
                          e->access ? e->access : NRPC_AUTHENTICATED);
            if (o && e->publish)
                json_object_set_new(o, "publish", json_string(e->publish));
            json_array_append_new(list, o);
        }
        return list;
    }
    for (i = 0; i < svc->nevhs; i++) {
        evh_entry *v = &svc->evhs[i];
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "service",
                                              v->h->service, "event", v->h->event, "subject",
                                              v->e.subject, "consumer", v->consumer,
                                              "dead_letter", v->deadletter, "description",
                                              v->h->description ? v->h->description : ""));
    }
    return list;
}

/* What STATS adds: emits and, per handler, events handled, failures,
 * redeliveries and dead letters. New. */
json_t *
nrpc__events_stats(nrpc_service *svc)
{
    json_t *handlers = json_array();
    size_t i;

    for (i = 0; i < svc->nevhs; i++) {
        evh_entry *v = &svc->evhs[i];
        rpc_stats *st = &v->e.stats;

        pthread_mutex_lock(&st->mu);
        json_array_append_new(
            handlers,
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:s, s:I}", "subject",
                      v->e.subject, "consumer", v->consumer, "num_events",
                      (json_int_t)st->num_requests, "num_errors", (json_int_t)st->num_errors,
                      "redelivered", (json_int_t)v->redelivered, "dead_letters",
                      (json_int_t)v->dead_letters, "dead_letter_errors",
                      (json_int_t)v->dead_letter_errors, "in_flight", st->in_flight,
                      "last_error", st->last_error, "processing_time",
                      (json_int_t)st->processing_ns));
        pthread_mutex_unlock(&st->mu);
    }
    return json_pack("{s:I, s:I, s:o}", "emitted", (json_int_t)atomic_load(&svc->emitted),
                     "emit_errors", (json_int_t)atomic_load(&svc->emit_errors), "handlers",
                     handlers);
}
