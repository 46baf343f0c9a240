/*
 * wamp_router.c: the WAMP v2 router of the gateway (Basic Profile, one
 * realm, roles broker and dealer), one per gateway loop.
 *
 * Procedures and topics live in two subject spaces, so that a publication
 * can never run an rpc: a procedure "s.m" is the NATS subject "s.m" that
 * the rpc listens on, and a topic "a.b" is the NATS subject "events.a.b"
 * (NRPC_EVENT_PREFIX, nrpc_topic_subject), where no rpc listens and where
 * nrpc_service_publish puts a service's events. Every payload on NATS is
 * [args, kwargs], so a browser and a natsrpc service see the same messages.
 *
 *   SUBSCRIBE t    one NATS subscription on events.t per distinct topic,
 *                  shared by every session subscribed to it (refcounted;
 *                  dropped with the last one). Its id is the WAMP
 *                  subscription id. With {"match": "prefix"}, t (or "t.")
 *                  is every topic under t's tokens: events.t.>.
 *                  SUBSCRIBED goes out once nats-server has the NATS
 *                  subscription (wamp_confirm.c: a marker round trip,
 *                  shared by every SUBSCRIBE of a loop turn), so an event
 *                  published through the gateway's node after SUBSCRIBED
 *                  reaches the session (other nodes hear of the
 *                  subscription over their routes a little later, on
 *                  nats-server's own time); until then the session gets no
 *                  EVENT of it. A subscription NATS has not confirmed
 *                  within ROUTER_CONFIRM_GIVE_UP_MS is answered ERROR
 *                  natsrpc.error.unavailable and dropped.
 *   PUBLISH t      a NATS publish of [args, kwargs] on events.t, with
 *                  headers carrying the publication id and (exclude_me, the
 *                  default) the publisher's session: when the message comes
 *                  back to us that session is skipped.
 *   EVENT          a NATS message on events.t (a publication: a request,
 *                  which carries a reply subject, is not shown) is encoded
 *                  and framed once, with Details {"topic": t}, and queued on
 *                  every subscriber.
 *   CALL p         the same NATS request as POST /p, through the loop's
 *                  nrpc_client; the reply becomes RESULT, an error becomes
 *                  ERROR with a URI from wamp_error_uri(), the error's
 *                  message as the only argument and kwargs {code, type}.
 *
 * A procedure must be what the HTTP path accepts (nrpc_subject_is_rpc), a
 * topic dot-separated tokens (nrpc_topic_subject); neither has wildcards or
 * '$', and neither passes NRPC_MAX_SUBJECT once it is a NATS subject, since
 * nats-server closes a connection whose protocol line is too long. Anything
 * else gets ERROR wamp.error.invalid_uri and touches nothing on NATS.
 *
 * With GATEWAY_AUTH, CALL, SUBSCRIBE and PUBLISH pass the gate first
 * (auth/gate.h) with the session's caller: the rpc's access, or the
 * topic's (gw_topic_access). A SUBSCRIBE may wait there for one catalog
 * gather (ROUTER_MAX_GATING at a time per session); a PUBLISH is decided
 * at once from what the loop knows, so a session's publications keep
 * their order.
 *
 * Threads: everything here runs on the loop's thread, router_on_nats and
 * router_on_reply included: the loop's client calls them after draining
 * NATS, with nothing copied or handed over.
 */
#include "ws.h"
#include "auth/gate.h"
#include "edge/edge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A SUBSCRIBE waits this long at most for nats-server to confirm it (NATS
 * down or reconnecting meanwhile), then gets an ERROR. */
#define ROUTER_CONFIRM_GIVE_UP_MS 10000
#define ROUTER_PREFIX_LEN (sizeof NRPC_EVENT_PREFIX - 1)
#define HDR_PUBLICATION "Nrpc-Wamp-Publication"
#define HDR_SESSION "Nrpc-Wamp-Session"

typedef struct topic topic;
typedef struct member member;
typedef struct waiter waiter;

typedef struct {
    ws_conn *conn;
    json_int_t id; /* WAMP session id; 0 before WELCOME */
    int established;
    int calls; /* in flight */
    member *subs;
    /* GATEWAY_AUTH on: who the session is (anonymous or a principal), NULL
     * with auth off. Until WELCOME, authing says HELLO is being answered
     * (CHALLENGE sent, or the credentials being checked). */
    gw_principal *who;
    int authing;
    size_t nsubs;      /* subscriptions held */
    int gating;        /* SUBSCRIBEs at the gate (auth on) */
    gw_bucket publish; /* publishes per second */
} session;

/* One session's subscription to one topic. */
struct member {
    topic *t;
    session *s;
    member *tprev, *tnext; /* in the topic */
    member *snext;         /* in the session */
    int waiting;           /* SUBSCRIBEs of it not answered yet: no EVENT before */
};

/* A SUBSCRIBE waiting for the server to confirm its topic's subscription. */
struct waiter {
    member *m;
    json_int_t request;
    uint64_t ticket; /* wamp_confirm's */
    int64_t since_ms;
    waiter *next;
};

struct topic {
    nrpc_tnode node; /* first: in the router's table, keyed by nrpc_hash_str(subject) */
    char *subject;   /* NRPC_EVENT_PREFIX + the WAMP topic; + ".>" for a prefix */
    wamp_router *r;
    int prefix;      /* match "prefix": every topic under the WAMP topic's tokens */
    json_int_t id;
    nrpc_subscription *nsub;
    uint64_t ticket; /* the confirmation its subscription waits for; 0: confirmed */
    member *members;
    size_t count;
};

struct wamp_router {
    ws_loop *loop;
    gw_loop *gl; /* for the gate (auth on) */
    nrpc_client *client; /* NULL once detached */
    char *realm;
    int64_t timeout_ms;
    json_int_t next_sub_id;
    nrpc_table topics; /* topic by subject */
    /* Per-session caps (GATEWAY_WAMP_*): one socket must not hold the
     * gateway's memory, NATS interest or a service's in-flight limit. */
    size_t max_subs;
    unsigned publish_rate, publish_burst;
    int max_calls;
    wamp_confirm *confirm;
    waiter *waiters; /* in arrival order */
};

/* ---------------------------------------------------------------------------
 * Helpers.
 */

/* A random id in [1, 2^53]: session and publication ids are global. 2^53
 * divides 2^64, so every id is equally likely. */
static json_int_t
router_random_id(void)
{
    return (json_int_t)(nrpc_random64() % (uint64_t)WAMP_MAX_ID) + 1;
}

static topic *
router_find(wamp_router *r, const char *subject)
{
    uint64_t key = nrpc_hash_str(subject);
    nrpc_tnode *n;

    for (n = nrpc_table_get(&r->topics, key); n; n = nrpc_table_next(&r->topics, n, key))
        if (strcmp(((topic *)n)->subject, subject) == 0)
            return (topic *)n;
    return NULL;
}

/* Sends ERROR [8, req_type, request, {}, uri, [message]]. */
static void
router_error(ws_conn *c, int req_type, json_int_t request, const char *uri, const char *message,
             json_t *kwargs)
{
    ws_conn_send_text(c, wamp_encode_error(req_type, request, uri,
                                           message ? json_pack("[s]", message) : NULL, kwargs));
}

/* Writes the NATS subject of m's topic (NRPC_EVENT_PREFIX + topic) into
 * out. Returns 0, or -1 after answering ERROR wamp.error.invalid_uri when
 * report is set (an unacknowledged PUBLISH gets no answer at all). */
static int
router_topic_subject(session *s, wamp_msg *m, int req_type, int report,
                     char out[NRPC_MAX_SUBJECT + 1])
{
    char msg[200];

    if (nrpc_topic_subject(m->uri, out, NRPC_MAX_SUBJECT + 1) == 0)
        return 0;
    if (report) {
        snprintf(msg, sizeof msg,
                 "a topic must be dot-separated tokens of letters, digits, '_' and '-' (no "
                 "wildcards, no '$'), at most %zu bytes",
                 (size_t)NRPC_MAX_SUBJECT - ROUTER_PREFIX_LEN);
        router_error(s->conn, req_type, m->id[0], "wamp.error.invalid_uri", msg, NULL);
    }
    return -1;
}

/* ABORT and close: the session is over. */
static void
router_abort(ws_conn *c, const char *reason, const char *message, uint16_t code)
{
    ws_conn_send_text(c, wamp_encode_abort(reason, message));
    ws_conn_close(c, code, NULL);
}

static void
router_violation(ws_conn *c, const char *message)
{
    nrpc_log(NRPC_LOG_INFO, "wamp: protocol violation: %s", message);
    router_abort(c, "wamp.error.protocol_violation", message, WS_CLOSE_PROTOCOL);
}

/* The option key of dict as a boolean: def when absent, -1 when not a bool. */
static int
router_opt_bool(json_t *dict, const char *key, int def)
{
    json_t *v = dict ? json_object_get(dict, key) : NULL;

    if (v == NULL)
        return def;
    if (!json_is_boolean(v))
        return -1;
    return json_is_true(v);
}

/* ---------------------------------------------------------------------------
 * Topics.
 */

typedef struct {
    const char *subject;
    const char *data;
    size_t len;
    json_int_t publication;
    json_int_t exclude; /* session to skip, 0 for none */
} nats_event;

/* One NATS message to every subscriber of t. e is borrowed. The EVENT's
 * details carry the message's own topic, which for a prefix subscription is
 * the one that matched. */
static void
router_deliver(topic *t, const nats_event *e)
{
    json_t *args = NULL, *kwargs = NULL;
    char err[128];
    ws_buf *b = NULL;
    char *text;
    member *m;

    if (t == NULL || t->count == 0)
        goto out;
    if (nrpc_request_decode(e->data, e->len, &args, &kwargs, err, sizeof err) != 0) {
        /* Not [args, kwargs]: deliver the value (or the text) as the only
         * argument rather than lose it. */
        json_t *v = json_loadb(e->data, e->len, JSON_DECODE_ANY, NULL);
        if (v == NULL)
            v = json_stringn(e->data, e->len);
        args = json_array();
        json_array_append_new(args, v);
        kwargs = NULL;
    }
    if (strncmp(e->subject, NRPC_EVENT_PREFIX, ROUTER_PREFIX_LEN) != 0)
        goto out;
    text = wamp_encode_event(t->id, e->publication, e->subject + ROUTER_PREFIX_LEN, args, kwargs);
    if (text == NULL)
        goto out;
    b = ws_buf_text(text, strlen(text));
    free(text);
    if (b == NULL)
        goto out;
    for (m = t->members; m; m = m->tnext) {
        if (m->waiting || (e->exclude != 0 && m->s->id == e->exclude))
            continue;
        if (ws_conn_send(m->s->conn, b) == 0)
            ws_stat_add(WS_STAT_EVENTS_OUT, 1);
    }
out:
    ws_buf_unref(b);
}

static json_int_t
header_id(const nrpc_message *msg, const char *name)
{
    const char *v = nrpc_message_header(msg, name);
    char *end = NULL;
    long long id;

    if (v == NULL)
        return 0;
    id = strtoll(v, &end, 10);
    return end != v && *end == '\0' && id >= 1 && id <= WAMP_MAX_ID ? (json_int_t)id : 0;
}

/* The loop's NATS connection, drained after a poll: deliver at once to the
 * topic whose subscription it came on (closure). */
static void
router_on_nats(const nrpc_message *msg, void *closure)
{
    topic *t = closure;
    wamp_router *r = t->r;
    nats_event e;

    /* A request (it wants a reply) is not a publication: subscribers see
     * publications only. A JetStream publish of an event (nrpc_service_emit)
     * also wants a reply, its acknowledgment, and is told by its id. */
    if (msg->reply != NULL && nrpc_message_header(msg, NRPC_HDR_MSG_ID) == NULL)
        return;
    e.subject = msg->subject;
    e.data = msg->data;
    e.len = msg->len;
    e.publication = header_id(msg, HDR_PUBLICATION);
    if (e.publication == 0)
        e.publication = router_random_id();
    e.exclude = header_id(msg, HDR_SESSION);
    router_deliver(t, &e);
    ws_loop_settle_later(r->loop);
}

static void
topic_free(wamp_router *r, topic *t)
{
    nrpc_table_remove(&r->topics, &t->node);
    if (t->nsub) {
        nrpc_client_unsubscribe(t->nsub);
        ws_stat_add(WS_STAT_TOPICS, -1);
    }
    free(t->subject);
    free(t);
}

/* Forgets m's unanswered SUBSCRIBEs; with uri, answers each with ERROR. */
static void
waiters_drop(wamp_router *r, member *m, const char *uri, const char *message)
{
    waiter **pp = &r->waiters;

    while (m->waiting > 0 && *pp) {
        waiter *w = *pp;
        if (w->m != m) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        m->waiting--;
        if (uri)
            router_error(m->s->conn, WAMP_SUBSCRIBE, w->request, uri, message, NULL);
        free(w);
    }
}

static void
member_remove(wamp_router *r, member *m)
{
    topic *t = m->t;

    waiters_drop(r, m, NULL, NULL);
    if (m->tprev)
        m->tprev->tnext = m->tnext;
    else
        t->members = m->tnext;
    if (m->tnext)
        m->tnext->tprev = m->tprev;
    t->count--;
    ws_stat_add(WS_STAT_SUBSCRIPTIONS, -1);
    free(m);
    if (t->count == 0)
        topic_free(r, t);
}

/* Answers SUBSCRIBE request for mb: SUBSCRIBED now when the server has its
 * topic's subscription, else once it confirms it. Returns 0, or -1 when out
 * of memory (nothing sent). */
static int
router_subscribed(wamp_router *r, member *mb, json_int_t request)
{
    waiter *w, **pp;

    if (mb->t->ticket == 0) {
        ws_conn_send_text(mb->s->conn, wamp_encode_subscribed(request, mb->t->id));
        return 0;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL)
        return -1;
    w->m = mb;
    w->request = request;
    w->ticket = mb->t->ticket;
    w->since_ms = nrpc_now_ms();
    for (pp = &r->waiters; *pp; pp = &(*pp)->next)
        ;
    *pp = w;
    mb->waiting++;
    return 0;
}

/* wamp_confirm: the server has every subscription of tickets <= upto. */
static void
router_on_confirmed(void *arg, uint64_t upto)
{
    wamp_router *r = arg;
    waiter **pp = &r->waiters;

    while (*pp) {
        waiter *w = *pp;
        if (w->ticket > upto) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->m->t->ticket = 0;
        w->m->waiting--;
        ws_conn_send_text(w->m->s->conn, wamp_encode_subscribed(w->request, w->m->t->id));
        free(w);
    }
    ws_loop_settle_later(r->loop);
}

static void router_subscribe_subject(wamp_router *r, session *s, json_int_t request,
                                     const char *subject, int prefix);

/* SUBSCRIBEs one session may have at the gate at once: each waits for at
 * most one catalog gather, so a burst past this is a flood. */
#define ROUTER_MAX_GATING 64

/* A SUBSCRIBE at the gate (auth on). */
typedef struct {
    ws_conn *conn; /* one reference */
    ws_loop *loop;
    wamp_router *r;
    json_int_t request;
    int prefix;
    char subject[NRPC_MAX_SUBJECT + 1];
    gw_gate gate;
} sub_gate;

/* Answers a refusal of the gate's for request of req_type, as calls do:
 * 401 and 403 are wamp.error.not_authorized, with {code, type}. */
static void
router_refuse(ws_conn *c, int req_type, json_int_t request, int status, const char *msg)
{
    router_error(c, req_type, request,
                 status == 503 ? "natsrpc.error.unavailable" : "wamp.error.not_authorized", msg,
                 json_pack("{s:i, s:s}", "code", status, "type",
                           status == 401   ? "unauthenticated"
                           : status == 403 ? "permission_denied"
                                           : "unavailable"));
}

static void
router_on_sub_gate(gw_gate *g, void *closure)
{
    sub_gate *sg = closure;
    session *s = ws_conn_session(sg->conn);

    if (ws_conn_alive(sg->conn) && s != NULL) {
        s->gating--;
        if (g->status == 0)
            router_subscribe_subject(sg->r, s, sg->request, sg->subject, sg->prefix);
        else
            router_refuse(sg->conn, WAMP_SUBSCRIBE, sg->request, g->status, g->msg);
        ws_loop_settle_later(sg->loop);
    }
    ws_conn_unref(sg->conn);
    gw_gate_clear(&sg->gate);
    free(sg);
}

/* Auth on: the topic's access (gw_topic_access) for the session's caller
 * first, which may wait for one catalog gather. */
static void
router_subscribe_gate(wamp_router *r, session *s, json_int_t request, const char *subject,
                      int prefix)
{
    size_t plen = sizeof NRPC_EVENT_PREFIX - 1, n = strlen(subject) - plen - (prefix ? 2 : 0);
    char uri[NRPC_MAX_SUBJECT + 1];
    sub_gate *sg;

    if (s->gating >= ROUTER_MAX_GATING) {
        router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.limit_exceeded",
                     "too many SUBSCRIBEs waiting for their permission check on this session",
                     NULL);
        return;
    }
    if ((sg = calloc(1, sizeof *sg)) == NULL) {
        router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.internal", "out of memory",
                     NULL);
        return;
    }
    memcpy(uri, subject + plen, n);
    uri[n] = '\0';
    sg->conn = s->conn;
    sg->loop = r->loop;
    sg->r = r;
    sg->request = request;
    sg->prefix = prefix;
    snprintf(sg->subject, sizeof sg->subject, "%s", subject);
    ws_conn_ref(s->conn);
    s->gating++;
    if (gw_gate_start_topic(&sg->gate, r->gl, uri, prefix, GW_TOPIC_SUBSCRIBE, s->who,
                            router_on_sub_gate, sg))
        router_on_sub_gate(&sg->gate, sg);
}

static void
router_subscribe(wamp_router *r, session *s, wamp_msg *m)
{
    char subject[NRPC_MAX_SUBJECT + 1];
    json_t *match = json_object_get(m->dict, "match");
    int prefix = 0;

    if (match && json_is_string(match) && strcmp(json_string_value(match), "prefix") == 0) {
        prefix = 1;
    } else if (match && !(json_is_string(match) && strcmp(json_string_value(match), "exact") == 0)) {
        router_error(s->conn, WAMP_SUBSCRIBE, m->id[0], "wamp.error.invalid_uri",
                     "topic matching is \"exact\" or \"prefix\"", NULL);
        return;
    }
    if (prefix) {
        /* NATS matches whole tokens: prefix "a.b" (or "a.b.") is every topic
         * under a.b, the subject events.a.b.> */
        char under[NRPC_MAX_SUBJECT + 2];
        wamp_msg stripped = *m;
        size_t n = m->uri ? strlen(m->uri) : 0;
        snprintf(under, sizeof under, "%s", m->uri ? m->uri : "");
        if (n > 1 && n < sizeof under && under[n - 1] == '.')
            under[n - 1] = '\0';
        stripped.uri = under;
        if (router_topic_subject(s, &stripped, WAMP_SUBSCRIBE, 1, subject) != 0)
            return;
        if (strlen(subject) + 2 > NRPC_MAX_SUBJECT) {
            router_error(s->conn, WAMP_SUBSCRIBE, m->id[0], "wamp.error.invalid_uri",
                         "the prefix is too long", NULL);
            return;
        }
        strcat(subject, ".>");
    } else if (router_topic_subject(s, m, WAMP_SUBSCRIBE, 1, subject) != 0) {
        return;
    }
    if (s->who != NULL) {
        router_subscribe_gate(r, s, m->id[0], subject, prefix);
        return;
    }
    router_subscribe_subject(r, s, m->id[0], subject, prefix);
}

/* SUBSCRIBE request to subject (a topic's, checked; prefix: events.<p>.>),
 * once allowed. */
static void
router_subscribe_subject(wamp_router *r, session *s, json_int_t request, const char *subject,
                         int prefix)
{
    topic *t;
    member *mb;

    t = router_find(r, subject);
    if (t) {
        for (mb = s->subs; mb; mb = mb->snext) {
            if (mb->t == t) { /* again: the same subscription */
                if (router_subscribed(r, mb, request) != 0)
                    router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.internal",
                                 "out of memory", NULL);
                return;
            }
        }
    }
    if (r->max_subs && s->nsubs >= r->max_subs) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "this session holds %zu subscriptions, the most it may "
                 "(GATEWAY_WAMP_MAX_SUBSCRIPTIONS)",
                 s->nsubs);
        router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.limit_exceeded", msg,
                     NULL);
        return;
    }
    if (t == NULL) {
        nrpc_status st = NRPC_ERR_STATE;

        t = calloc(1, sizeof *t);
        if (t == NULL || (t->subject = strdup(subject)) == NULL) {
            free(t);
            router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.internal",
                         "out of memory", NULL);
            return;
        }
        if (nrpc_table_put(&r->topics, &t->node, nrpc_hash_str(subject)) != 0) {
            free(t->subject);
            free(t);
            router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.internal",
                         "out of memory", NULL);
            return;
        }
        t->r = r;
        t->prefix = prefix;
        if (r->client)
            st = nrpc_client_subscribe(r->client, subject, router_on_nats, t, &t->nsub);
        /* After the SUB: the marker that confirms it follows it on the wire. */
        if (st == NRPC_OK && (t->ticket = wamp_confirm_ticket(r->confirm)) == 0) {
            nrpc_client_unsubscribe(t->nsub);
            t->nsub = NULL;
            st = NRPC_ERR_NOMEM;
        }
        if (st != NRPC_OK) {
            topic_free(r, t);
            router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.unavailable",
                         "cannot subscribe on NATS now", NULL);
            return;
        }
        ws_stat_add(WS_STAT_TOPICS, 1);
        t->id = ++r->next_sub_id;
    }
    mb = calloc(1, sizeof *mb);
    if (mb == NULL) {
        if (t->count == 0)
            topic_free(r, t);
        router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.internal", "out of memory",
                     NULL);
        return;
    }
    mb->t = t;
    mb->s = s;
    mb->tnext = t->members;
    if (t->members)
        t->members->tprev = mb;
    t->members = mb;
    t->count++;
    mb->snext = s->subs;
    s->subs = mb;
    s->nsubs++;
    ws_stat_add(WS_STAT_SUBSCRIPTIONS, 1);
    if (router_subscribed(r, mb, request) != 0) {
        s->subs = mb->snext;
        member_remove(r, mb);
        router_error(s->conn, WAMP_SUBSCRIBE, request, "natsrpc.error.internal", "out of memory",
                     NULL);
    }
}

static void
router_unsubscribe(wamp_router *r, session *s, wamp_msg *m)
{
    member **pp;

    for (pp = &s->subs; *pp; pp = &(*pp)->snext) {
        /* One still waiting for its SUBSCRIBED has no id for the session. */
        if ((*pp)->t->id == m->id[1] && (*pp)->waiting == 0) {
            member *mb = *pp;
            *pp = mb->snext;
            s->nsubs--;
            member_remove(r, mb);
            ws_conn_send_text(s->conn, wamp_encode_unsubscribed(m->id[0]));
            return;
        }
    }
    router_error(s->conn, WAMP_UNSUBSCRIBE, m->id[0], "wamp.error.no_such_subscription",
                 "no such subscription in this session", NULL);
}

/* ---------------------------------------------------------------------------
 * Publish.
 */

static void
router_publish(wamp_router *r, session *s, wamp_msg *m)
{
    int ack = router_opt_bool(m->dict, "acknowledge", 0);
    int exclude_me = router_opt_bool(m->dict, "exclude_me", 1);
    const char *headers[5] = {NULL};
    char pub_text[24], sess_text[24], subject[NRPC_MAX_SUBJECT + 1];
    json_int_t pub = router_random_id();
    nrpc_status st = NRPC_ERR_STATE;
    char *body;

    if (ack < 0 || exclude_me < 0) {
        router_error(s->conn, WAMP_PUBLISH, m->id[0], "wamp.error.invalid_argument",
                     "options acknowledge and exclude_me must be booleans", NULL);
        return;
    }
    if (router_topic_subject(s, m, WAMP_PUBLISH, ack, subject) != 0)
        return;
    /* Auth on: the topic's publish access (gw_topic_access), from what the
     * loop knows now: publications keep their order, so none waits. */
    if (s->who) {
        char msg[640];
        int status = gw_gate_topic_now(r->gl, m->uri, GW_TOPIC_PUBLISH, s->who, msg, sizeof msg);
        if (status != 0) {
            if (ack)
                router_refuse(s->conn, WAMP_PUBLISH, m->id[0], status, msg);
            return;
        }
    }
    if (gw_bucket_take(&s->publish, r->publish_rate, r->publish_burst, nrpc_now_ms()) != 0) {
        /* Dropped; said only to a publisher that asked for acknowledgments. */
        if (ack)
            router_error(s->conn, WAMP_PUBLISH, m->id[0], "natsrpc.error.limit_exceeded",
                         "too many publications on this session (GATEWAY_WAMP_PUBLISH_RATE)",
                         NULL);
        return;
    }
    body = nrpc_reply_encode(json_incref(m->args), json_incref(m->kwargs));
    snprintf(pub_text, sizeof pub_text, "%" PRId64, (int64_t)pub);
    snprintf(sess_text, sizeof sess_text, "%" PRId64, (int64_t)s->id);
    headers[0] = HDR_PUBLICATION;
    headers[1] = pub_text;
    if (exclude_me) {
        headers[2] = HDR_SESSION;
        headers[3] = sess_text;
    }
    if (body && r->client)
        st = nrpc_client_publish(r->client, subject, body, strlen(body), headers);
    free(body);
    if (st == NRPC_OK)
        ws_stat_add(WS_STAT_PUBLISHES, 1);
    if (!ack)
        return;
    if (st == NRPC_OK)
        ws_conn_send_text(s->conn, wamp_encode_published(m->id[0], pub));
    else
        router_error(s->conn, WAMP_PUBLISH, m->id[0], "natsrpc.error.unavailable",
                     "NATS is not connected", NULL);
}

/* ---------------------------------------------------------------------------
 * Calls.
 */

typedef struct {
    ws_loop *loop;
    ws_conn *conn; /* one reference */
    json_int_t request;
    /* waiting at the gate (auth on) */
    wamp_router *r;
    char *body;
    int64_t timeout_ms;
    gw_gate *gate;
} call_reply;

static void
call_reply_free(call_reply *cr)
{
    ws_conn_unref(cr->conn);
    gw_gate_clear(cr->gate);
    free(cr->gate);
    free(cr->body);
    free(cr);
}

/* The loop's client, once per accepted call: RESULT or ERROR for it. */
static void
router_on_reply(const nrpc_response *resp, void *closure)
{
    call_reply *cr = closure;
    session *s = ws_conn_session(cr->conn);
    json_t *args = NULL, *kwargs = NULL;
    char err[256];

    if (!ws_conn_alive(cr->conn) || s == NULL)
        goto out;
    s->calls--;
    if (resp->code == 0) {
        if (nrpc_request_decode(resp->data, resp->len, &args, &kwargs, err, sizeof err) == 0)
            ws_conn_send_text(cr->conn, wamp_encode_result(cr->request, args, kwargs));
        else
            router_error(cr->conn, WAMP_CALL, cr->request, "natsrpc.error.internal",
                         "the service's reply is not [args, kwargs]", NULL);
    } else {
        json_t *body = json_loadb(resp->data, resp->len, 0, NULL);
        json_t *e = json_object_get(body, "error");
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *message = json_string_value(json_object_get(e, "message"));

        router_error(cr->conn, WAMP_CALL, cr->request, wamp_error_uri(resp->code, type),
                     message ? message : "error",
                     json_pack("{s:i, s:s}", "code", resp->code, "type",
                               type ? type : nrpc_code_type(resp->code)));
        json_decref(body);
    }
    ws_loop_settle_later(cr->loop);
out:
    call_reply_free(cr);
}

/* Sends a call counted in s->calls; on failure answers ERROR and lets go
 * of cr. principal: the NRPC_HDR_PRINCIPAL value, or NULL. */
static void
router_send_call(wamp_router *r, session *s, call_reply *cr, const char *subject,
                 const char *principal)
{
    const char *headers[] = {NRPC_HDR_PRINCIPAL, principal, NULL};
    nrpc_status st = NRPC_ERR_STATE;

    if (r->client)
        st = nrpc_client_request(r->client, subject, cr->body, strlen(cr->body), cr->timeout_ms,
                                 principal ? headers : NULL, router_on_reply, cr);
    if (st == NRPC_OK) {
        ws_stat_add(WS_STAT_CALLS, 1);
        return;
    }
    s->calls--;
    router_error(s->conn, WAMP_CALL, cr->request, "natsrpc.error.unavailable",
                 st == NRPC_ERR_STATE ? "NATS is not connected" : "cannot send the call", NULL);
    call_reply_free(cr);
}

/* The gate's verdict on a call (auth on): 401 and 403 are
 * wamp.error.not_authorized, with {code, type} as for any error. */
static void
router_on_gate(gw_gate *g, void *closure)
{
    call_reply *cr = closure;
    session *s = ws_conn_session(cr->conn);
    ws_loop *loop = cr->loop;

    if (!ws_conn_alive(cr->conn) || s == NULL) {
        call_reply_free(cr);
        return;
    }
    if (g->status == 0) {
        router_send_call(cr->r, s, cr, g->subject, g->principal);
    } else {
        s->calls--;
        router_refuse(cr->conn, WAMP_CALL, cr->request, g->status, g->msg);
        call_reply_free(cr);
    }
    ws_loop_settle_later(loop);
}

static void
router_call(wamp_router *r, session *s, wamp_msg *m)
{
    json_t *tmo = json_object_get(m->dict, "timeout");
    int64_t timeout_ms = r->timeout_ms;
    call_reply *cr;
    char *body;

    if (!nrpc_subject_is_rpc(m->uri, strlen(m->uri))) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "a procedure must be <service>.<method> of letters, digits, '_' and '-' (no "
                 "'$', no _INBOX), at most %d bytes",
                 NRPC_MAX_SUBJECT);
        router_error(s->conn, WAMP_CALL, m->id[0], "wamp.error.invalid_uri", msg, NULL);
        return;
    }
    if (tmo && json_is_integer(tmo) && json_integer_value(tmo) > 0)
        timeout_ms = json_integer_value(tmo) < GW_MAX_TIMEOUT_MS ? json_integer_value(tmo)
                                                                 : GW_MAX_TIMEOUT_MS;
    if (r->max_calls > 0 && s->calls >= r->max_calls) {
        router_error(s->conn, WAMP_CALL, m->id[0], "natsrpc.error.overloaded",
                     "too many calls in flight on this session", NULL);
        return;
    }
    body = nrpc_reply_encode(json_incref(m->args), json_incref(m->kwargs));
    cr = calloc(1, sizeof *cr);
    if (body == NULL || cr == NULL) {
        free(body);
        free(cr);
        router_error(s->conn, WAMP_CALL, m->id[0], "natsrpc.error.internal", "out of memory", NULL);
        return;
    }
    cr->loop = r->loop;
    cr->conn = s->conn;
    cr->request = m->id[0];
    cr->r = r;
    cr->body = body;
    cr->timeout_ms = timeout_ms;
    ws_conn_ref(s->conn);
    s->calls++;
    if (s->who == NULL) {
        router_send_call(r, s, cr, m->uri, NULL);
        return;
    }
    /* Auth on: the same gate as POST /<subject>, with the session's caller. */
    cr->gate = malloc(sizeof *cr->gate);
    if (cr->gate == NULL) {
        s->calls--;
        router_error(s->conn, WAMP_CALL, m->id[0], "natsrpc.error.internal", "out of memory", NULL);
        call_reply_free(cr);
        return;
    }
    if (gw_gate_start_as(cr->gate, r->gl, m->uri, strlen(m->uri), s->who, router_on_gate, cr))
        router_on_gate(cr->gate, cr);
}

/* ---------------------------------------------------------------------------
 * Sessions.
 */

/* ---- GATEWAY_AUTH: identifying a session --------------------------------
 *
 * With auth on, HELLO is answered after the caller is identified: with
 * WAMP-Ticket when HELLO offers authmethods ["ticket"] (CHALLENGE, then
 * AUTHENTICATE's signature is checked as a bearer token: static token,
 * JWT or the authorizer), else from the handshake's Authorization header or
 * natsrpc_token cookie, else anonymous. Refused credentials: ABORT
 * wamp.error.not_authorized. WELCOME says authid (the principal's sub, or
 * "anonymous"), authrole ("user" or "anonymous") and authmethod.
 */

typedef struct {
    ws_conn *conn; /* one reference */
    ws_loop *loop;
    const char *method; /* static */
    gw_principal p;     /* filled by the identification: ours, not the session's */
} ident_job;

static void
router_welcome(session *s, const char *method)
{
    int anon = s->who->result != GW_ID_OK;

    s->established = 1;
    s->authing = 0;
    ws_stat_add(WS_STAT_SESSIONS, 1);
    ws_conn_send_text(s->conn, wamp_encode_welcome_auth(
                                   s->id, "natsrpc-gateway/" NRPC_VERSION,
                                   anon ? "anonymous" : s->who->sub, anon ? "anonymous" : "user",
                                   anon ? "anonymous" : method));
}

static void
router_on_identified(void *closure, gw_principal *p)
{
    ident_job *j = closure;
    session *s = ws_conn_session(j->conn);

    if (ws_conn_alive(j->conn) && s != NULL && s->authing) {
        int ticket = strcmp(j->method, "ticket") == 0;
        if (p->result == GW_ID_OK || (p->result == GW_ID_ANONYMOUS && !ticket)) {
            *s->who = *p;
            router_welcome(s, j->method);
        } else {
            router_abort(j->conn,
                         p->result == GW_ID_UNAVAILABLE ? "natsrpc.error.unavailable"
                                                        : "wamp.error.not_authorized",
                         p->result == GW_ID_ANONYMOUS ? "no ticket" : p->why, WS_CLOSE_NORMAL);
        }
        ws_loop_settle_later(j->loop);
    }
    ws_conn_unref(j->conn);
    free(j);
}

/* Identifies s from authorization (NULL: anonymous) and answers HELLO. */
static void
router_identify(wamp_router *r, session *s, const char *authorization, const char *method)
{
    ident_job *j = calloc(1, sizeof *j);

    if (j == NULL || r->gl == NULL || r->gl->auth == NULL) {
        free(j);
        router_abort(s->conn, "natsrpc.error.unavailable", "cannot check credentials now",
                     WS_CLOSE_INTERNAL);
        return;
    }
    j->conn = s->conn;
    j->loop = r->loop;
    j->method = method;
    ws_conn_ref(s->conn);
    s->authing = 1;
    if (gw_auth_identify(r->gl->auth, authorization, &j->p, router_on_identified, j))
        router_on_identified(j, &j->p);
}

/* HELLO with auth on: s is made, not yet established. */
static void
router_hello_auth(wamp_router *r, session *s, wamp_msg *m)
{
    json_t *methods = json_object_get(m->dict, "authmethods"), *v;
    size_t i;

    json_array_foreach (methods, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), "ticket") == 0) {
            s->authing = 1;
            ws_conn_send_text(s->conn, wamp_encode_challenge("ticket"));
            return;
        }
    }
    router_identify(r, s, ws_conn_authorization(s->conn), "authorization");
}

/* AUTHENTICATE after our CHALLENGE: the signature is the ticket. */
static void
router_authenticate(wamp_router *r, session *s, wamp_msg *m)
{
    char *h;

    if (!s->authing || s->established) {
        router_violation(s->conn, "AUTHENTICATE without a CHALLENGE");
        return;
    }
    h = malloc(strlen(m->uri) + 8);
    if (h == NULL) {
        router_abort(s->conn, "natsrpc.error.internal", "out of memory", WS_CLOSE_INTERNAL);
        return;
    }
    sprintf(h, "Bearer %s", m->uri);
    router_identify(r, s, h, "ticket");
    free(h); /* gw_auth_identify keeps nothing of it past its return */
}

int
wamp_session_established(const void *s)
{
    return ((const session *)s)->established;
}

void
wamp_router_set_loop(wamp_router *r, gw_loop *gl)
{
    if (r)
        r->gl = gl;
}

static void
router_hello(wamp_router *r, ws_conn *c, wamp_msg *m)
{
    session *s;

    if (strcmp(m->uri, r->realm) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "no such realm: '%.100s' (this router serves '%.100s')", m->uri,
                 r->realm);
        router_abort(c, "wamp.error.no_such_realm", msg, WS_CLOSE_NORMAL);
        return;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        router_abort(c, "natsrpc.error.internal", "out of memory", WS_CLOSE_INTERNAL);
        return;
    }
    s->conn = c;
    s->id = router_random_id();
    if (r->gl && r->gl->cfg->auth) {
        s->who = calloc(1, sizeof *s->who);
        if (s->who == NULL) {
            free(s);
            router_abort(c, "natsrpc.error.internal", "out of memory", WS_CLOSE_INTERNAL);
            return;
        }
        ws_conn_set_session(c, s);
        router_hello_auth(r, s, m);
        return;
    }
    s->established = 1;
    ws_conn_set_session(c, s);
    ws_stat_add(WS_STAT_SESSIONS, 1);
    ws_conn_send_text(c, wamp_encode_welcome(s->id, "natsrpc-gateway/" NRPC_VERSION));
}

void
wamp_router_on_message(wamp_router *r, ws_conn *c, int opcode, const uint8_t *data, size_t len)
{
    session *s = ws_conn_session(c);
    char err[256];
    wamp_msg m;

    if (opcode != WS_OP_TEXT) {
        router_abort(c, "wamp.error.protocol_violation", "wamp.2.json sends text messages only",
                     WS_CLOSE_UNSUPPORTED);
        return;
    }
    if (wamp_decode((const char *)data, len, &m, err, sizeof err) != 0) {
        router_violation(c, err);
        return;
    }
    if (s == NULL) {
        if (m.type == WAMP_HELLO)
            router_hello(r, c, &m);
        else if (m.type == WAMP_ABORT)
            ws_conn_close(c, WS_CLOSE_NORMAL, NULL);
        else
            router_violation(c, "the first message must be HELLO");
        wamp_msg_free(&m);
        return;
    }
    if (!s->established) { /* auth on: CHALLENGE sent or credentials being checked */
        if (m.type == WAMP_AUTHENTICATE)
            router_authenticate(r, s, &m);
        else if (m.type == WAMP_ABORT)
            ws_conn_close(c, WS_CLOSE_NORMAL, NULL);
        else
            router_violation(c, "authentication first: AUTHENTICATE answers a CHALLENGE");
        wamp_msg_free(&m);
        return;
    }
    switch (m.type) {
    case WAMP_SUBSCRIBE: router_subscribe(r, s, &m); break;
    case WAMP_UNSUBSCRIBE: router_unsubscribe(r, s, &m); break;
    case WAMP_PUBLISH: router_publish(r, s, &m); break;
    case WAMP_CALL: router_call(r, s, &m); break;
    case WAMP_GOODBYE:
        ws_conn_send_text(c, wamp_encode_goodbye("wamp.close.goodbye_and_out"));
        ws_conn_close(c, WS_CLOSE_NORMAL, NULL);
        break;
    case WAMP_ABORT: ws_conn_close(c, WS_CLOSE_NORMAL, NULL); break;
    case WAMP_REGISTER:
        router_error(c, WAMP_REGISTER, m.id[0], "natsrpc.error.not_supported",
                     "procedures are natsrpc services; this router only forwards calls", NULL);
        break;
    case WAMP_UNREGISTER:
        router_error(c, WAMP_UNREGISTER, m.id[0], "wamp.error.no_such_registration",
                     "no such registration", NULL);
        break;
    case WAMP_CANCEL: break; /* a NATS request cannot be taken back; its answer still comes */
    case WAMP_HELLO: router_violation(c, "HELLO inside a session"); break;
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "a router does not accept %s", wamp_type_name(m.type));
        router_violation(c, msg);
    }
    }
    wamp_msg_free(&m);
}

void
wamp_router_on_close(wamp_router *r, ws_conn *c)
{
    session *s = ws_conn_session(c);

    if (s == NULL)
        return;
    while (s->subs) {
        member *mb = s->subs;
        s->subs = mb->snext;
        member_remove(r, mb);
    }
    ws_conn_set_session(c, NULL);
    if (s->established)
        ws_stat_add(WS_STAT_SESSIONS, -1);
    free(s->who);
    free(s);
}

/* ---------------------------------------------------------------------------
 * Life cycle.
 */

wamp_router *
wamp_router_create(ws_loop *l, const gw_config *cfg, nrpc_client *client)
{
    wamp_router *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    r->loop = l;
    r->client = client;
    r->realm = strdup(cfg->wamp_realm && *cfg->wamp_realm ? cfg->wamp_realm : "realm1");
    r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    r->max_subs = cfg->wamp_max_subs;
    r->publish_rate = cfg->wamp_publish_rate;
    r->publish_burst = cfg->wamp_publish_rate * 2;
    r->max_calls = (int)cfg->wamp_max_calls;
    r->confirm = wamp_confirm_create(client, router_on_confirmed, r);
    if (r->realm == NULL || r->confirm == NULL) {
        wamp_confirm_free(r->confirm);
        free(r->realm);
        free(r);
        return NULL;
    }
    return r;
}

void
wamp_router_detach(wamp_router *r)
{
    nrpc_tnode *n;
    size_t i;

    if (r == NULL)
        return;
    /* Every topic stays (its members still point at it); only its NATS
     * subscription goes. */
    for (i = 0; i < r->topics.nbuckets; i++) {
        for (n = r->topics.buckets[i]; n; n = n->next) {
            topic *t = (topic *)n;
            if (t->nsub) {
                nrpc_client_unsubscribe(t->nsub);
                t->nsub = NULL;
                ws_stat_add(WS_STAT_TOPICS, -1);
            }
        }
    }
    wamp_confirm_detach(r->confirm);
    r->client = NULL;
}

void
wamp_router_prepare(wamp_router *r)
{
    if (r != NULL)
        wamp_confirm_prepare(r->confirm);
}

void
wamp_router_tick(wamp_router *r, int64_t now_ms)
{
    waiter *w;

    if (r == NULL)
        return;
    wamp_confirm_tick(r->confirm, now_ms);
    /* Oldest first: give up on those NATS has not confirmed in time. */
    while ((w = r->waiters) != NULL && now_ms - w->since_ms >= ROUTER_CONFIRM_GIVE_UP_MS) {
        member *mb = w->m, **pp;
        char msg[128];

        snprintf(msg, sizeof msg, "NATS did not confirm the subscription within %d s",
                 ROUTER_CONFIRM_GIVE_UP_MS / 1000);
        nrpc_log(NRPC_LOG_WARN, "wamp: %s (%s)", msg, mb->t->subject);
        waiters_drop(r, mb, "natsrpc.error.unavailable", msg);
        for (pp = &mb->s->subs; *pp != mb; pp = &(*pp)->snext)
            ;
        *pp = mb->snext;
        member_remove(r, mb);
        ws_loop_settle_later(r->loop);
    }
}

void
wamp_router_destroy(wamp_router *r)
{
    if (r == NULL)
        return;
    wamp_router_detach(r);
    /* Sessions are gone with their connections, and topics with their last
     * member: only the table's buckets are left. */
    nrpc_table_free(&r->topics);
    wamp_confirm_free(r->confirm);
    free(r->realm);
    free(r);
}
