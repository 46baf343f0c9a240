/* discovery.c: the NATS service API (ADR-32, io.nats.micro.v1) for every
 * natsrpc service: $SRV.PING, $SRV.INFO and $SRV.STATS at the three levels
 * (all services, by name, by name and id), and the per-rpc statistics that
 * STATS reports.
 *
 * The $SRV requests are answered on the NATS delivery thread, not the loop
 * thread, so that discovery and stats answer at once even while the loop is
 * busy; the statistics they read are guarded by a mutex per rpc. */
#include "runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- statistics -------------------------------------------------------- */

static int
hist_bucket(int64_t ns)
{
    double us = (double)ns / 1000.0;
    int b;
    if (us <= 1.0)
        return 0;
    b = (int)ceil(NRPC_HIST_PER_OCTAVE * log2(us));
    return b >= NRPC_HIST_BUCKETS ? NRPC_HIST_BUCKETS - 1 : b;
}

/* The geometric middle of a bucket, in ns: no value of the bucket is more
 * than 2^(1/32) (2.2 %) away from it. */
static double
hist_middle_ns(int bucket)
{
    return bucket == 0 ? 1000.0 : pow(2.0, (bucket - 0.5) / NRPC_HIST_PER_OCTAVE) * 1000.0;
}

void
nrpc__stats_record(rpc_entry *rpc, int64_t elapsed_ns, int code, const char *message)
{
    rpc_stats *st = &rpc->stats;

    if (elapsed_ns < 0)
        elapsed_ns = 0;
    pthread_mutex_lock(&st->mu);
    st->num_requests++;
    st->processing_ns += (uint64_t)elapsed_ns;
    st->hist[hist_bucket(elapsed_ns)]++;
    if (st->num_requests - 1 == st->refused || elapsed_ns < st->min_ns)
        st->min_ns = elapsed_ns; /* the first answered call, or a faster one */
    if (elapsed_ns > st->max_ns)
        st->max_ns = elapsed_ns;
    st->in_flight--;
    if (code != 0) {
        st->num_errors++;
        snprintf(st->last_error, sizeof st->last_error, "%d:%s", code, message ? message : "");
    }
    pthread_mutex_unlock(&st->mu);
}

void
nrpc__stats_refused(rpc_entry *rpc)
{
    pthread_mutex_lock(&rpc->stats.mu);
    rpc->stats.refused++;
    rpc->stats.num_requests++;
    rpc->stats.num_errors++;
    snprintf(rpc->stats.last_error, sizeof rpc->stats.last_error, "503:overloaded");
    pthread_mutex_unlock(&rpc->stats.mu);
}

/* The latency of quantile q (0..1) in ms, by nearest rank: the middle of
 * the bucket that holds the call of rank ceil(q * total), kept within the
 * fastest and slowest call. That is within 2.2 % of the true value, and
 * exact when the calls took the same time (one call, say). total: the
 * answered calls, those that the histogram holds. */
static double
stats_quantile_ms(const rpc_stats *st, uint64_t total, double q)
{
    uint64_t want = (uint64_t)ceil(q * (double)total), seen = 0;
    double ns;
    int i;

    if (total == 0)
        return 0;
    for (i = 0; i < NRPC_HIST_BUCKETS - 1; i++) {
        seen += st->hist[i];
        if (seen >= want)
            break;
    }
    ns = hist_middle_ns(i);
    if (ns < (double)st->min_ns)
        ns = (double)st->min_ns;
    if (ns > (double)st->max_ns)
        ns = (double)st->max_ns;
    return round(ns / 1000.0) / 1000.0; /* ms, to the µs */
}

/* ---- responses --------------------------------------------------------- */

static json_t *
base_response(nrpc_service *svc, const char *type)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "type", type, "name", svc->def.name, "id",
                     svc->id, "version", svc->def.version, "metadata", "natsrpc_version",
                     NRPC_VERSION);
}

/* The declared parameters of an rpc as JSON text, for endpoint metadata
 * (metadata values are strings in the service API). */
static char *
params_text(const nrpc_rpc *r)
{
    json_t *list = json_array();
    const nrpc_param *p;
    char *text;

    for (p = r->params; p && p->name; p++) {
        json_t *one = json_pack("{s:s, s:s, s:b}", "name", p->name, "type",
                                nrpc_type_name(p->type), "required", p->default_json == NULL);
        if (p->default_json) {
            json_t *d = json_loads(p->default_json, JSON_DECODE_ANY, NULL);
            json_object_set_new(one, "default", d ? d : json_null());
        }
        if (p->description)
            json_object_set_new(one, "description", json_string(p->description));
        if (p->example_json) {
            json_t *e = json_loads(p->example_json, JSON_DECODE_ANY, NULL);
            if (e) /* a bad example only costs the documentation its value */
                json_object_set_new(one, "example", e);
        }
        json_array_append_new(list, one);
    }
    text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    return text;
}

static json_t *
info_response(nrpc_service *svc)
{
    json_t *r = base_response(svc, "io.nats.micro.v1.info_response");
    json_t *eps = json_array();
    size_t i;

    json_object_set_new(r, "description",
                        json_string(svc->def.description ? svc->def.description : ""));
    /* When this instance started (as in STATS), in INFO too: the gateway
     * gives a REST route two services declare to the one that was there
     * first. */
    json_object_set_new(json_object_get(r, "metadata"), "started", json_string(svc->started));
    /* Callers that see it watch every call for heartbeats from the start
     * (natsrpc.h, "Progress heartbeats"). */
    json_object_set_new(json_object_get(r, "metadata"), NRPC_INFO_HEARTBEATS,
                        json_string("true"));
    /* Declared events, as JSON text (metadata values are strings). */
    {
        static const char *const kinds[] = {"emits", "handles", "topics"};
        size_t k;
        for (k = 0; k < 3; k++) {
            json_t *list = nrpc__events_info(svc, kinds[k]);
            char *text = json_array_size(list) ? json_dumps(list, JSON_COMPACT) : NULL;
            if (text)
                json_object_set_new(json_object_get(r, "metadata"), kinds[k], json_string(text));
            free(text);
            json_decref(list);
        }
    }
    for (i = 0; i < svc->nrpcs; i++) {
        const nrpc_rpc *rpc = svc->rpcs[i].rpc;
        char *params = params_text(rpc);
        json_t *md = json_pack("{s:s, s:s, s:s, s:s}", "params", params ? params : "[]",
                               "description", rpc->description ? rpc->description : "",
                               "varargs", rpc->flags & NRPC_VARARGS ? "true" : "false", "varkw",
                               rpc->flags & NRPC_VARKW ? "true" : "false");
        free(params);
        /* Who may call it: the gateway enforces this with auth on. */
        json_object_set_new(md, "access",
                            json_string(rpc->access ? rpc->access : NRPC_AUTHENTICATED));
        if (rpc->http && rpc->http[0]) {
            /* Metadata values are strings (the service API): a JSON array
             * as text, like params. */
            json_t *rules = json_array();
            const char *const *rule;
            char *text;
            for (rule = rpc->http; *rule; rule++)
                json_array_append_new(rules, json_string(*rule));
            text = json_dumps(rules, JSON_COMPACT);
            json_decref(rules);
            if (text)
                json_object_set_new(md, "http", json_string(text));
            free(text);
        }
        json_array_append_new(eps, json_pack("{s:s, s:s, s:s, s:o}", "name", rpc->name, "subject",
                                             svc->rpcs[i].subject, "queue_group",
                                             svc->def.queue_group, "metadata", md));
    }
    json_object_set_new(r, "endpoints", eps);
    return r;
}

static json_t *
stats_response(nrpc_service *svc)
{
    json_t *r = base_response(svc, "io.nats.micro.v1.stats_response");
    json_t *eps = json_array();
    size_t i;

    json_object_set_new(r, "started", json_string(svc->started));
    /* The connection this process answers on: a closed one is rebuilt
     * (service.c), and how often shows here. */
    json_object_set_new(
        r, "nats",
        json_pack("{s:s, s:I}", "status",
                  svc->nc == NULL                                                ? "none"
                  : natsConnection_Status(svc->nc) == NATS_CONN_STATUS_CONNECTED ? "connected"
                                                                                 : "reconnecting",
                  "rebuilds", (json_int_t)svc->rebuilds));
    for (i = 0; i < svc->nrpcs; i++) {
        rpc_entry *e = &svc->rpcs[i];
        rpc_stats snap;
        uint64_t answered, avg;

        pthread_mutex_lock(&e->stats.mu);
        memcpy(&snap, &e->stats, sizeof snap);
        pthread_mutex_unlock(&e->stats.mu);
        answered = snap.num_requests - snap.refused; /* refusals never ran */
        avg = answered ? snap.processing_ns / answered : 0;
        json_array_append_new(
            eps, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:{s:f, s:f, s:f, s:i, s:I}}",
                           "name", e->rpc->name, "subject", e->subject, "queue_group",
                           svc->def.queue_group, "num_requests", (json_int_t)snap.num_requests,
                           "num_errors", (json_int_t)snap.num_errors, "last_error",
                           snap.last_error, "processing_time", (json_int_t)snap.processing_ns,
                           "average_processing_time", (json_int_t)avg, "data", "p50_ms",
                           stats_quantile_ms(&snap, answered, 0.50), "p90_ms",
                           stats_quantile_ms(&snap, answered, 0.90), "p99_ms",
                           stats_quantile_ms(&snap, answered, 0.99), "in_flight", snap.in_flight,
                           "overloaded", (json_int_t)snap.refused));
    }
    json_object_set_new(r, "endpoints", eps);
    if (svc->nemits > 0 || svc->nevhs > 0)
        json_object_set_new(r, "events", nrpc__events_stats(svc));
    return r;
}

/* $SRV.<VERB>[.<name>[.<id>]]: answer PING, INFO and STATS; stay silent for
 * verbs we do not know, as the API asks. */
static void
on_srv(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nrpc_service *svc = closure;
    const char *subj = natsMsg_GetSubject(msg), *reply = natsMsg_GetReply(msg);
    const char *verb = subj + 5; /* after "$SRV." */
    size_t vlen = strcspn(verb, ".");
    json_t *resp = NULL;

    if (reply && *reply) {
        if (vlen == 4 && strncmp(verb, "PING", 4) == 0)
            resp = base_response(svc, "io.nats.micro.v1.ping_response");
        else if (vlen == 4 && strncmp(verb, "INFO", 4) == 0)
            resp = info_response(svc);
        else if (vlen == 5 && strncmp(verb, "STATS", 5) == 0)
            resp = stats_response(svc);
    }
    if (resp) {
        char *text = json_dumps(resp, JSON_COMPACT);
        if (text)
            natsConnection_Publish(nc, reply, text, (int)strlen(text));
        free(text);
        json_decref(resp);
    }
    natsMsg_Destroy(msg);
}

/* ---- life -------------------------------------------------------------- */

void
nrpc__discovery_init(nrpc_service *svc)
{
    static const char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[22];
    struct timespec ts;
    struct tm tm;
    size_t i;
    char day[24];

    /* A NUID-like id: 22 characters of [0-9A-Za-z], usable as a subject
     * token, different for every process (the one id source). */
    for (i = 0; i < sizeof rnd; i++)
        rnd[i] = (unsigned char)(nrpc_random64() & 0xff);
    for (i = 0; i < sizeof rnd; i++)
        svc->id[i] = alphabet[rnd[i] % 62];
    svc->id[sizeof rnd] = '\0';
    clock_gettime(CLOCK_REALTIME, &ts);

    gmtime_r(&ts.tv_sec, &tm);
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(svc->started, sizeof svc->started, "%s.%09ldZ", day, (long)(ts.tv_nsec % 1000000000L));
    for (i = 0; i < svc->nrpcs; i++)
        pthread_mutex_init(&svc->rpcs[i].stats.mu, NULL);
}

nrpc_status
nrpc__discovery_subscribe(nrpc_service *svc)
{
    char subj[3][256];
    int i;

    snprintf(subj[0], sizeof subj[0], "$SRV.*");
    snprintf(subj[1], sizeof subj[1], "$SRV.*.%s", svc->def.name);
    snprintf(subj[2], sizeof subj[2], "$SRV.*.%s.%s", svc->def.name, svc->id);
    for (i = 0; i < 3; i++) {
        /* Plain subscriptions: every instance answers discovery. */
        natsStatus s = natsConnection_Subscribe(&svc->srv_subs[i], svc->nc, subj[i], on_srv, svc);
        if (s != NATS_OK) {
            nrpc_log(NRPC_LOG_ERROR, "subscribe %s: %s", subj[i], natsStatus_GetText(s));
            return NRPC_ERR_NATS;
        }
    }
    return NRPC_OK;
}

void
nrpc__discovery_stop(nrpc_service *svc)
{
    int i;
    for (i = 0; i < 3; i++) {
        if (svc->srv_subs[i]) {
            natsSubscription_Unsubscribe(svc->srv_subs[i]);
            natsSubscription_Destroy(svc->srv_subs[i]);
            svc->srv_subs[i] = NULL;
        }
    }
}
