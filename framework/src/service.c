/* service.c: the service runtime: settings, subscriptions, the hand-off
 * from the NATS delivery thread to the loop thread, admission control,
 * drain on SIGTERM/SIGINT, and in-process invocation for tests.
 *
 * Threads: nats.c reads the socket on its own thread and delivers every
 * message of every subscription on one shared delivery thread (global
 * delivery), which only does admission and queueing. Handlers, timers and
 * answers all run on the loop thread (libuv), so a handler never needs a
 * lock and a thousand sleeping calls cost a thousand timers, not threads. */
#include "runtime.h"
#include "bind.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_IN_FLIGHT 10000
#define DEFAULT_DRAIN_TIMEOUT_S 30
#define DRAIN_POLL_MS 10

int
nrpc__name_ok(const char *s)
{
    size_t i;
    if (s == NULL || *s == '\0')
        return 0;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ---- set-up and tear-down ---------------------------------------------- */

/* Every REST rule of r parses, and each {name} in its path and location is
 * a declared parameter (path) or may be any result field (location). */
static int
rpc_routes_check(const char *service, const nrpc_rpc *r, char *err, size_t errlen)
{
    const char *const *rule;

    for (rule = r->http; rule && *rule; rule++) {
        nrpc_route route;
        const char *t;

        if (nrpc_route_parse(*rule, &route, err, errlen) != 0)
            return -1;
        for (t = strchr(route.path, '{'); t; t = strchr(t + 1, '{')) {
            const nrpc_param *p;
            size_t n = strcspn(t + 1, "}");
            for (p = r->params; p && p->name; p++)
                if (strlen(p->name) == n && strncmp(p->name, t + 1, n) == 0)
                    break;
            if (p == NULL || p->name == NULL) {
                snprintf(err, errlen, "route '%s': {%.*s} is not a parameter of %s.%s", *rule,
                         (int)n, t + 1, service, r->name);
                return -1;
            }
        }
    }
    return 0;
}

void
nrpc__service_free(nrpc_service *svc)
{
    size_t i;

    if (svc == NULL)
        return;
    nrpc__events_free(svc);
    for (i = 0; i < svc->nrpcs; i++) {
        natsSubscription_Destroy(svc->rpcs[i].sub);
        pthread_mutex_destroy(&svc->rpcs[i].stats.mu);
        free(svc->rpcs[i].subject);
        nrpc__free_defaults(svc->rpcs[i].defaults, svc->rpcs[i].nparams);
    }
    free(svc->rpcs);
    free(svc->test_body);
    json_decref(svc->empty_array);
    json_decref(svc->empty_object);
    pthread_mutex_destroy(&svc->qmu);
    free(svc);
}

/* Validates def and resolves every rpc (subject, parsed defaults). */
nrpc_status
nrpc__service_new(nrpc_service **out, const nrpc_service_def *def)
{
    nrpc_service *svc;
    size_t n = 0, i;
    char err[256];

    *out = NULL;
    if (def == NULL || !nrpc__name_ok(def->name) || def->rpcs == NULL) {
        nrpc_log(NRPC_LOG_ERROR, "a service needs a name of letters, digits, '_' and '-' and "
                                 "an rpc table");
        return NRPC_ERR_INVALID_ARG;
    }
    while (def->rpcs[n].name)
        n++;
    svc = calloc(1, sizeof *svc);
    if (svc == NULL)
        return NRPC_ERR_NOMEM;
    pthread_mutex_init(&svc->qmu, NULL);
    svc->def = *def;
    svc->empty_array = json_array();
    svc->empty_object = json_object();
    if (svc->def.version == NULL)
        svc->def.version = "0.0.0";
    if (svc->def.queue_group == NULL)
        svc->def.queue_group = "q";
    svc->max_in_flight = def->max_in_flight > 0
                             ? def->max_in_flight
                             : (int)nrpc_env_int("NRPC_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, 1,
                                                  1000000);
    svc->access_log = (int)nrpc_env_int("NRPC_ACCESS_LOG", 0, 0, 1);
    svc->rpcs = calloc(n ? n : 1, sizeof *svc->rpcs);
    if (svc->rpcs == NULL) {
        nrpc__service_free(svc);
        return NRPC_ERR_NOMEM;
    }
    svc->nrpcs = n;
    for (i = 0; i < n; i++) {
        rpc_entry *e = &svc->rpcs[i];
        const nrpc_rpc *r = &def->rpcs[i];
        size_t len;

        e->rpc = r;
        e->svc = svc;
        if (!nrpc__name_ok(r->name) || r->handler == NULL) {
            nrpc_log(NRPC_LOG_ERROR, "rpc #%zu of %s needs a name of letters, digits, '_' and "
                                     "'-' and a handler", i, def->name);
            nrpc__service_free(svc);
            return NRPC_ERR_INVALID_ARG;
        }
        while (r->params && r->params[e->nparams].name)
            e->nparams++;
        len = strlen(def->name) + strlen(r->name) + 2;
        e->subject = malloc(len);
        if (e->subject == NULL) {
            nrpc__service_free(svc);
            return NRPC_ERR_NOMEM;
        }
        snprintf(e->subject, len, "%s.%s", def->name, r->name);
        if (!nrpc_access_valid(r->access)) {
            nrpc_log(NRPC_LOG_ERROR,
                     "%s: access must be \"public\", \"authenticated\" or space-separated "
                     "scopes, got '%.100s'",
                     e->subject, r->access);
            nrpc__service_free(svc);
            return NRPC_ERR_INVALID_ARG;
        }
        if (rpc_routes_check(def->name, r, err, sizeof err) != 0) {
            nrpc_log(NRPC_LOG_ERROR, "%s: %s", e->subject, err);
            nrpc__service_free(svc);
            return NRPC_ERR_INVALID_ARG;
        }
        if (nrpc__parse_defaults(r->params, &e->defaults, err, sizeof err) != 0) {
            nrpc_log(NRPC_LOG_ERROR, "%s: %s", e->subject, err);
            nrpc__service_free(svc);
            return NRPC_ERR_INVALID_ARG;
        }
    }
    nrpc__discovery_init(svc);
    if (nrpc__events_new(svc) != NRPC_OK) {
        nrpc__service_free(svc);
        return NRPC_ERR_INVALID_ARG;
    }
    *out = svc;
    return NRPC_OK;
}

/* ---- answers ----------------------------------------------------------- */

void
nrpc__service_send(nrpc_service *svc, natsMsg *req, int code, const char *type,
                   const char *message, const char *body)
{
    const char *reply;
    natsStatus s;

    if (svc->nc == NULL) { /* nrpc_test_invoke: keep the answer */
        free(svc->test_body);
        svc->test_code = code;
        svc->test_body = code == 0 ? strdup(body) : nrpc__error_text(code, type, message);
        svc->test_done = 1;
        return;
    }
    reply = req ? natsMsg_GetReply(req) : NULL;
    if (reply == NULL || *reply == '\0')
        return; /* a publish, not a request: nobody is waiting */
    if (code == 0) {
        s = natsConnection_Publish(svc->nc, reply, body, (int)strlen(body));
    } else {
        natsMsg *m = NULL;
        s = nrpc__error_msg(&m, reply, code, type, message);
        if (s == NATS_OK)
            s = natsConnection_PublishMsg(svc->nc, m);
        natsMsg_Destroy(m);
    }
    if (s != NATS_OK)
        nrpc_log(NRPC_LOG_WARN, "could not send the answer to %s: %s",
                 natsMsg_GetSubject(req), natsStatus_GetText(s));
}

void
nrpc__service_call_done(nrpc_service *svc, nrpc_call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else if (svc->live == call)
        svc->live = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    atomic_fetch_sub(&svc->in_flight, 1);
}

/* ---- the hand-off ------------------------------------------------------ */

int64_t
nrpc__deadline_from_header(const char *v, int64_t now_ms)
{
    int64_t ms;

    /* Any NATS client can send this header: a number that does not parse
     * means no deadline, and a huge one must not overflow the sum. */
    if (nrpc_parse_int64(v, &ms) != 0)
        return INT64_MAX;
    if (ms < 0)
        ms = 0;
    return ms > INT64_MAX - 1 - now_ms ? INT64_MAX : now_ms + ms;
}

/* NATS delivery thread. Admission happens here so that an overloaded
 * service refuses at once instead of queueing without end. */
static void
on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    rpc_entry *rpc = closure;
    nrpc_service *svc = rpc->svc;
    const char *v = NULL;
    int64_t deadline = INT64_MAX;
    inbound *in;

    if (natsMsgHeader_Get(msg, NRPC_HDR_TIMEOUT, &v) == NATS_OK && v)
        deadline = nrpc__deadline_from_header(v, nrpc_now_ms());
    if (atomic_fetch_add(&svc->in_flight, 1) >= svc->max_in_flight) {
        char m[256];
        atomic_fetch_sub(&svc->in_flight, 1);
        nrpc__stats_refused(rpc);
        snprintf(m, sizeof m, "%s is overloaded: %d calls in flight", svc->def.name,
                 svc->max_in_flight);
        nrpc__service_send(svc, msg, NRPC_CODE_UNAVAILABLE, "overloaded", m, NULL);
        nrpc__msg_destroy(msg);
        return;
    }
    in = malloc(sizeof *in);
    if (in == NULL) {
        atomic_fetch_sub(&svc->in_flight, 1);
        nrpc__service_send(svc, msg, NRPC_CODE_UNAVAILABLE, "unavailable", "out of memory", NULL);
        nrpc__msg_destroy(msg);
        return;
    }
    pthread_mutex_lock(&rpc->stats.mu);
    rpc->stats.in_flight++;
    pthread_mutex_unlock(&rpc->stats.mu);
    in->kind = IN_RPC;
    in->rpc = rpc;
    in->msg = msg;
    in->ack = NULL;
    in->deadline_ms = deadline;
    nrpc__queue_push(svc, in);
}

void
nrpc__queue_push(nrpc_service *svc, inbound *in)
{
    in->next = NULL;
    pthread_mutex_lock(&svc->qmu);
    if (svc->qtail)
        svc->qtail->next = in;
    else
        svc->qhead = in;
    svc->qtail = in;
    pthread_mutex_unlock(&svc->qmu);
    uv_async_send(&svc->wake); /* coalesced by libuv when already pending */
}

static inbound *
queue_take_all(nrpc_service *svc)
{
    inbound *list;
    pthread_mutex_lock(&svc->qmu);
    list = svc->qhead;
    svc->qhead = svc->qtail = NULL;
    pthread_mutex_unlock(&svc->qmu);
    return list;
}

/* Loop thread: run every queued request. */
static void
on_wake(uv_async_t *a)
{
    nrpc_service *svc = a->data;
    inbound *in = queue_take_all(svc), *next;

    for (; in; in = next) {
        nrpc_call *call;
        next = in->next;
        if (in->kind == IN_REPLY) { /* a reply to an outgoing call */
            nrpc__outcall_reply(svc, in->msg);
            free(in);
            continue;
        }
        if (in->kind == IN_EVENT) {
            nrpc__event_run(svc, (evh_entry *)in->rpc, in->msg);
            free(in);
            continue;
        }
        if (in->kind == IN_PUBACK) {
            nrpc__event_puback(svc, in->ack);
            free(in);
            continue;
        }
        call = nrpc__call_new(svc, in->rpc, in->msg, in->deadline_ms);
        if (call == NULL) {
            nrpc__service_send(svc, in->msg, NRPC_CODE_UNAVAILABLE, "unavailable",
                               "out of memory", NULL);
            natsMsg_Destroy(in->msg);
            nrpc__stats_record(in->rpc, 0, NRPC_CODE_UNAVAILABLE, "out of memory");
            atomic_fetch_sub(&svc->in_flight, 1);
        } else {
            nrpc__call_run(call, natsMsg_GetData(in->msg), (size_t)natsMsg_GetDataLength(in->msg));
        }
        free(in);
    }
    /* A disconnect wakes us too. After the queue: a reply that made it in
     * answers its call rather than a 503. */
    nrpc__outcall_sweep(svc);
}

/* ---- drain ------------------------------------------------------------- */

static void
close_handles(nrpc_service *svc)
{
    uv_close((uv_handle_t *)&svc->wake, NULL);
    uv_close((uv_handle_t *)&svc->rebuild, NULL);
    uv_close((uv_handle_t *)&svc->rebuild_timer, NULL);
    uv_close((uv_handle_t *)&svc->events_async, NULL);
    uv_close((uv_handle_t *)&svc->events_timer, NULL);
    uv_close((uv_handle_t *)&svc->emit_sweep, NULL);
    uv_close((uv_handle_t *)&svc->sigterm, NULL);
    uv_close((uv_handle_t *)&svc->sigint, NULL);
    if (!uv_is_closing((uv_handle_t *)&svc->drain_timer))
        uv_close((uv_handle_t *)&svc->drain_timer, NULL);
}

static int
subs_drained(nrpc_service *svc)
{
    size_t i;
    /* Without a server nothing more can be delivered, and nats.c would only
     * report the drain complete after its own timeout. */
    if (svc->nc && natsConnection_Status(svc->nc) != NATS_CONN_STATUS_CONNECTED)
        return 1;
    for (i = 0; i < svc->nrpcs; i++)
        if (svc->rpcs[i].sub &&
            natsSubscription_DrainCompletionStatus(svc->rpcs[i].sub) == NATS_ILLEGAL_STATE)
            return 0;
    return nrpc__events_drained(svc);
}

static void
drain_check(uv_timer_t *t)
{
    nrpc_service *svc = t->data;
    int queued;

    pthread_mutex_lock(&svc->qmu);
    queued = svc->qhead != NULL;
    pthread_mutex_unlock(&svc->qmu);
    if (queued)
        return; /* on_wake runs them first */
    if (subs_drained(svc) && atomic_load(&svc->in_flight) == 0) {
        nrpc_log(NRPC_LOG_INFO, "drained: every call answered; exiting");
    } else if (nrpc_now_ms() >= svc->drain_deadline_ms) {
        nrpc_log(NRPC_LOG_WARN, "drain deadline passed with %d calls in flight; answering them "
                                "with 503", atomic_load(&svc->in_flight));
        while (svc->live)
            nrpc__call_abandon(svc->live, NRPC_CODE_UNAVAILABLE, "unavailable",
                               "the service is shutting down");
        svc->exit_code = 1;
    } else {
        return;
    }
    uv_timer_stop(t);
    if (svc->def.on_stop)
        svc->def.on_stop(svc);
    nrpc__outcall_stop(svc); /* their timers would keep the loop alive */
    if (svc->nc && natsConnection_Status(svc->nc) == NATS_CONN_STATUS_CONNECTED)
        natsConnection_FlushTimeout(svc->nc, 2000); /* answers out before close */
    close_handles(svc);
}

static void drain_start(nrpc_service *svc, const char *why);

static void
on_signal(uv_signal_t *h, int signum)
{
    nrpc_service *svc = h->data;

    if (svc->draining) {
        nrpc_log(NRPC_LOG_WARN, "second signal: exiting without waiting");
        svc->drain_deadline_ms = 0;
        return;
    }
    drain_start(svc, strsignal(signum));
}

/* Loop thread: stop taking calls, answer those in flight, then exit. */
static void
drain_start(nrpc_service *svc, const char *why)
{
    size_t i;

    svc->draining = 1;
    svc->drain_deadline_ms =
        nrpc_now_ms() +
        1000 * nrpc_env_int("NRPC_DRAIN_TIMEOUT", DEFAULT_DRAIN_TIMEOUT_S, 0, 3600);
    nrpc_log(NRPC_LOG_INFO, "%s: draining (%d calls in flight)", why,
             atomic_load(&svc->in_flight));
    nrpc__discovery_stop(svc); /* stop being listed at once */
    /* Drain, not unsubscribe: messages nats.c already holds for us are still
     * delivered and answered; the queue group sends new ones to replicas. */
    for (i = 0; i < svc->nrpcs; i++)
        if (svc->rpcs[i].sub)
            natsSubscription_Drain(svc->rpcs[i].sub);
    nrpc__events_drain(svc);
    uv_timer_start(&svc->drain_timer, drain_check, DRAIN_POLL_MS, DRAIN_POLL_MS);
}

/* ---- running ----------------------------------------------------------- */

static nrpc_status
service_subscribe(nrpc_service *svc)
{
    size_t i;
    for (i = 0; i < svc->nrpcs; i++) {
        rpc_entry *e = &svc->rpcs[i];
        natsStatus s = natsConnection_QueueSubscribe(&e->sub, svc->nc, e->subject,
                                                     svc->def.queue_group, on_request, e);
        if (s != NATS_OK) {
            nrpc_log(NRPC_LOG_ERROR, "subscribe %s: %s", e->subject, natsStatus_GetText(s));
            return NRPC_ERR_NATS;
        }
    }
    return NRPC_OK;
}

/* nats.c thread: the connection ended CLOSED by itself. */
static void
on_nats_closed(void *closure)
{
    nrpc_service *svc = closure;
    uv_async_send(&svc->rebuild);
}

/* nats.c thread: the server refused something for want of permission
 * (logged already). A refused subscription means an rpc, the discovery or
 * an event handler is not served: stop, with exit status 1, rather than
 * run without it. A refused publish fails only that publish. */
static void
on_nats_not_permitted(void *closure, const char *text)
{
    nrpc_service *svc = closure;

    if (strstr(text, "Subscription") == NULL)
        return;
    atomic_store(&svc->sub_refused, 1);
    uv_async_send(&svc->rebuild);
}

/* nats.c thread: a connection is up (again): the next rebuild starts at
 * once, and events set up their JetStream side again. */
static void
on_nats_connected(void *closure)
{
    nrpc_service *svc = closure;
    atomic_store(&svc->rebuild_attempts, 0);
    nrpc__events_reconnected(closure);
}

/* nats.c thread: the connection was lost; outgoing calls sent on it fail
 * on the loop thread (nrpc__outcall_sweep). */
static void
on_nats_disconnected(void *closure)
{
    nrpc_service *svc = closure;
    atomic_fetch_add(&svc->conn_gen, 1);
    uv_async_send(&svc->wake);
}

/* Connects; svc->nc changes only on success. */
static nrpc_status
service_connect(nrpc_service *svc)
{
    nrpc__conn_hooks hooks = {.connected = on_nats_connected,
                              .disconnected = on_nats_disconnected,
                              .closed = on_nats_closed,
                              .not_permitted = on_nats_not_permitted,
                              .closure = svc};
    natsConnection *nc = NULL;
    nrpc_status st = nrpc__nats_connect(&nc, NULL, svc->def.name, &hooks);

    /* The delivery thread reads svc->nc to refuse calls; during a rebuild it
     * may still see the old connection, which stays allocated until exit. */
    if (st == NRPC_OK)
        svc->nc = nc;
    return st;
}

static void rebuild_now(uv_timer_t *t);

/* Loop thread: the next rebuild attempt, after a backoff that grows until a
 * connection comes up, so that a server which closes every new connection
 * (refused credentials) does not get one per millisecond. */
static void
rebuild_later(nrpc_service *svc)
{
    int n = atomic_fetch_add(&svc->rebuild_attempts, 1) + 1;

    uv_timer_start(&svc->rebuild_timer, rebuild_now, (uint64_t)nrpc_backoff_ms(n, 100, 2000), 0);
}

/* Loop thread: the closed hook asked for a new connection. */
static void
on_rebuild(uv_async_t *a)
{
    nrpc_service *svc = a->data;
    int n = atomic_load(&svc->rebuild_attempts);

    if (atomic_load(&svc->sub_refused) && !svc->draining) {
        nrpc_log(NRPC_LOG_ERROR, "NATS refused a subscription of %s: stopping (grant this "
                                 "process's NATS user the service's subjects)",
                 svc->def.name);
        svc->exit_code = 1;
        drain_start(svc, "NATS refused a subscription");
        return;
    }
    if (svc->draining || uv_is_active((uv_handle_t *)&svc->rebuild_timer))
        return; /* an attempt is due already */
    uv_timer_start(&svc->rebuild_timer, rebuild_now,
                   n == 0 ? 0 : (uint64_t)nrpc_backoff_ms(n, 100, 2000), 0);
}

/* Loop thread: a new connection in place of one nats.c gave up on. The old
 * one is kept (closed) until exit: the delivery thread may still be inside
 * one of its callbacks. An attempt that fails (the new connection could
 * not be built, or was closed again before it was ready) is tried again
 * later: the service never stays without a connection. */
static void
rebuild_now(uv_timer_t *t)
{
    nrpc_service *svc = t->data;
    natsConnection *old = svc->nc;
    size_t i;

    if (svc->draining || old == NULL || !natsConnection_IsClosed(old))
        return;
    for (i = 0; i < svc->nrpcs; i++) {
        natsSubscription_Destroy(svc->rpcs[i].sub);
        svc->rpcs[i].sub = NULL;
    }
    nrpc__discovery_stop(svc);
    nrpc__events_stop(svc, 0);
    if (service_connect(svc) != NRPC_OK) {
        nrpc_log(NRPC_LOG_WARN, "could not build a new NATS connection; trying again");
        rebuild_later(svc);
        return;
    }
    if (svc->nretired < NRPC_MAX_RETIRED)
        svc->retired[svc->nretired++] = old;
    else
        nrpc__nats_close(old); /* rebuilds this often would be a loop; say so */
    svc->rebuilds++;
    if (nrpc__discovery_subscribe(svc) != NRPC_OK || service_subscribe(svc) != NRPC_OK) {
        /* Mostly closed again already; if not, close it so that the next
         * attempt replaces it as a whole. */
        nrpc_log(NRPC_LOG_WARN, "the new NATS connection failed before it was ready; trying "
                                "again");
        natsConnection_Close(svc->nc);
        rebuild_later(svc);
        return;
    }
    if (natsConnection_Status(svc->nc) != NATS_CONN_STATUS_CONNECTED)
        atomic_fetch_add(&svc->rebuild_attempts, 1); /* on_nats_connected resets it */
    /* Outgoing calls waited on the old connection: they fail now that the
     * new one is in place, so the calls they belong to are answered on it
     * (on the old one the answers would be lost). */
    nrpc__outcall_lost(svc);
    nrpc__events_connected(svc);
    nrpc_log(NRPC_LOG_INFO, "new NATS connection built; %zu rpcs subscribed again", svc->nrpcs);
}

static void
usage(FILE *f, const nrpc_service_def *def)
{
    const nrpc_rpc *r;
    size_t i;
    fprintf(f,
            "Usage: %s [--help]\n\n"
            "%s %s: %s\n\n"
            "Serves these rpcs on NATS (subject <service>.<method>, queue group %s):\n",
            def->name, def->name, def->version ? def->version : "0.0.0",
            def->description ? def->description : "a natsrpc service",
            def->queue_group ? def->queue_group : "q");
    for (r = def->rpcs; r && r->name; r++) {
        const nrpc_param *p;
        fprintf(f, "  %s.%s(", def->name, r->name);
        for (p = r->params; p && p->name; p++)
            fprintf(f, "%s%s: %s%s%s", p == r->params ? "" : ", ", p->name,
                    nrpc_type_name(p->type), p->default_json ? " = " : "",
                    p->default_json ? p->default_json : "");
        if (r->flags & NRPC_VARARGS)
            fprintf(f, "%s*args", r->params && r->params->name ? ", " : "");
        if (r->flags & NRPC_VARKW)
            fprintf(f, "%s**kwargs",
                    (r->params && r->params->name) || (r->flags & NRPC_VARARGS) ? ", " : "");
        fprintf(f, ")%s%s\n", r->description ? "  " : "", r->description ? r->description : "");
    }
    for (i = 0; def->emits && def->emits[i].name; i++)
        fprintf(f, "%s  events.%s.%s%s%s\n", i == 0 ? "\nEmits these events (JetStream):\n" : "",
                def->name, def->emits[i].name, def->emits[i].description ? "  " : "",
                def->emits[i].description ? def->emits[i].description : "");
    for (i = 0; def->topics && def->topics[i].name; i++)
        fprintf(f, "%s  events.%s.%s%s%s\n", i == 0 ? "\nPublishes on these topics:\n" : "",
                def->name, def->topics[i].name, def->topics[i].description ? "  " : "",
                def->topics[i].description ? def->topics[i].description : "");
    for (i = 0; def->handles && def->handles[i].service; i++)
        fprintf(f, "%s  events.%s.%s%s%s\n", i == 0 ? "\nHandles these events:\n" : "",
                def->handles[i].service, def->handles[i].event,
                def->handles[i].description ? "  " : "",
                def->handles[i].description ? def->handles[i].description : "");
    fprintf(f,
            "\nEnvironment:\n"
            "  NATS_URL             NATS server(s), comma-separated (default %s)\n" NRPC_NATS_ENV_HELP
            "  NRPC_MAX_IN_FLIGHT   calls in flight before new ones get 503 overloaded "
            "(default %d)\n"
            "  NRPC_DRAIN_TIMEOUT   seconds to finish calls in flight after SIGTERM "
            "(default %d)\n"
            "  NRPC_ACCESS_LOG      1: log one line per answered call (errors always are)\n"
            "  NRPC_EVENT_MAX_DELIVER  tries of an event before its dead letter (default 5)\n"
            "  NRPC_EVENT_BACKOFF_MS   first redelivery delay, doubled up to 60 s (default 500)\n"
            "  NRPC_EVENT_ACK_WAIT_MS  time a handler has before redelivery (default 30000)\n"
            "  NRPC_EMIT_TIMEOUT_MS    wait for JetStream to store an emit (default 5000)\n"
            "  LOG_FORMAT           json: log JSON lines\n\n"
            "Request body: [args, kwargs], [args], [], empty, or {kwargs}.\n"
            "Reply: [result_args, result_kwargs], or an error with the headers "
            "Nats-Service-Error-Code\nand Nats-Service-Error and the body "
            "{\"error\": {\"code\", \"type\", \"message\"}}.\n",
            NRPC_DEFAULT_NATS_URL, DEFAULT_MAX_IN_FLIGHT, DEFAULT_DRAIN_TIMEOUT_S);
}

int
nrpc__loop_setup(nrpc_service *svc, uv_loop_t *loop)
{
    svc->loop = loop;
    if (uv_loop_init(loop) != 0)
        return -1;
    uv_async_init(loop, &svc->wake, on_wake);
    svc->wake.data = svc;
    uv_async_init(loop, &svc->rebuild, on_rebuild);
    svc->rebuild.data = svc;
    uv_timer_init(loop, &svc->rebuild_timer);
    svc->rebuild_timer.data = svc;
    uv_signal_init(loop, &svc->sigterm);
    uv_signal_init(loop, &svc->sigint);
    svc->sigterm.data = svc->sigint.data = svc;
    uv_timer_init(loop, &svc->drain_timer);
    svc->drain_timer.data = svc;
    nrpc__events_loop_setup(svc);
    return 0;
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void
nrpc__loop_teardown(uv_loop_t *loop)
{
    uv_walk(loop, close_walk_cb, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
}

int
nrpc_service_main(const nrpc_service_def *def, int argc, char **argv)
{
    nrpc_service *svc = NULL;
    uv_loop_t loop;
    int i, rc;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, def);
            return 0;
        }
        fprintf(stderr, "%s: unknown argument '%s'\n\n", argv[0], argv[i]);
        usage(stderr, def);
        return 2;
    }
    nrpc_log_set_program(def && def->name ? def->name : argv[0]);
    signal(SIGPIPE, SIG_IGN);
    if (nrpc__service_new(&svc, def) != NRPC_OK)
        return 1;
    if (nrpc__loop_setup(svc, &loop) != 0) {
        nrpc__service_free(svc);
        return 1;
    }
    uv_signal_start(&svc->sigterm, on_signal, SIGTERM);
    uv_signal_start(&svc->sigint, on_signal, SIGINT);

    rc = service_connect(svc) == NRPC_OK ? 0 : 1;
    if (rc == 0)
        nrpc__events_connected(svc); /* before on_start: an outbox relay emits */
    if (rc == 0 && def->on_start && def->on_start(svc) != 0) {
        nrpc_log(NRPC_LOG_ERROR, "start-up of %s failed", def->name);
        rc = 1;
    }
    /* Discovery first: once an rpc takes calls, $SRV.INFO says what it
     * declares (a gateway decides an rpc it cannot find in a gather as
     * undeclared, open to any signed-in caller). */
    if (rc == 0 && nrpc__discovery_subscribe(svc) != NRPC_OK)
        rc = 1;
    if (rc == 0 && service_subscribe(svc) != NRPC_OK)
        rc = 1;
    if (rc == 0) {
        nrpc_log(NRPC_LOG_INFO, "%s %s serving %zu rpcs on %s.* (queue group %s, at most %d "
                                "in flight)",
                 def->name, svc->def.version, svc->nrpcs, def->name, svc->def.queue_group,
                 svc->max_in_flight);
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = svc->exit_code;
    }
    nrpc__outcall_stop(svc);
    /* Requests delivered after the drain finished are dropped unanswered:
     * the queue group already routes new calls to replicas. Events go back
     * to their stream at once, for a replica or the next start. */
    {
        inbound *in = queue_take_all(svc), *next;
        for (; in; in = next) {
            next = in->next;
            if (in->kind == IN_EVENT)
                nrpc__event_return(in->msg);
            else
                nrpc__msg_destroy(in->msg); /* a core message: ours alone */
            free(in->ack);
            free(in);
        }
    }
    nrpc__events_stop(svc, 1);
    if (svc->nc) {
        nrpc__discovery_stop(svc);
        for (i = 0; i < (int)svc->nrpcs; i++) {
            natsSubscription_Destroy(svc->rpcs[i].sub);
            svc->rpcs[i].sub = NULL;
        }
        nrpc__nats_close(svc->nc);
        svc->nc = NULL;
    }
    for (i = 0; i < (int)svc->nretired; i++)
        nrpc__nats_close(svc->retired[i]);
    /* nats.c's delivery thread may still be inside one of our callbacks,
     * which queues its message and wakes the loop: wait until every library
     * thread has ended before the queue and the loop go, then drop what came
     * in meanwhile (an event left unacknowledged is redelivered). */
    nats_CloseAndWait(2000);
    {
        /* Freed here, not with natsMsg_Destroy: nats.c's collector thread
         * has ended with the library, and a message handed to it now would
         * never be freed. Nothing of nats.c can use one any more. */
        inbound *in = queue_take_all(svc), *next;
        for (; in; in = next) {
            next = in->next;
            nrpc__msg_destroy(in->msg);
            free(in->ack);
            free(in);
        }
    }
    nrpc__loop_teardown(&loop);
    nrpc__service_free(svc);
    return rc;
}

/* ---- publishing and accessors ------------------------------------------ */

nrpc_status
nrpc_service_publish(nrpc_service *svc, const char *topic, json_t *args, json_t *kwargs)
{
    char subject[NRPC_MAX_SUBJECT + 1], *text;
    natsStatus s;

    if (svc == NULL || nrpc_topic_subject(topic, subject, sizeof subject) != 0) {
        json_decref(args);
        json_decref(kwargs);
        return NRPC_ERR_INVALID_ARG;
    }
    text = nrpc_reply_encode(args, kwargs);
    if (text == NULL)
        return NRPC_ERR_NOMEM;
    if (svc->nc == NULL) { /* in tests there is no NATS */
        free(text);
        return NRPC_OK;
    }
    s = natsConnection_Publish(svc->nc, subject, text, (int)strlen(text));
    free(text);
    if (s != NATS_OK) {
        nrpc_log(NRPC_LOG_WARN, "publish on %s: %s", subject, natsStatus_GetText(s));
        return NRPC_ERR_NATS;
    }
    return NRPC_OK;
}

struct uv_loop_s *
nrpc_service_loop(nrpc_service *svc)
{
    return svc ? svc->loop : NULL;
}

const nrpc_service_def *
nrpc_service_def_of(nrpc_service *svc)
{
    return &svc->def;
}

void
nrpc_service_set_data(nrpc_service *svc, void *data)
{
    svc->data = data;
}

void *
nrpc_service_data(nrpc_service *svc)
{
    return svc->data;
}
