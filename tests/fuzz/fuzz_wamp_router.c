/* fuzz_wamp_router.c: the WAMP router as a state machine. One WebSocket
 * session at a time receives a sequence of messages (HELLO, SUBSCRIBE,
 * PUBLISH, CALL, UNSUBSCRIBE, GOODBYE, junk), built from templates so most
 * of them get past the decoder, interleaved with what NATS does meanwhile:
 * replies to calls (results, errors, junk), messages on the subscriptions,
 * the socket closing and a new one saying HELLO. ws.c and the NATS client
 * are fakes here, which check the router's side of their contracts: every
 * accepted request gets its callback exactly once, every subscription is
 * released, every frame reference is returned, and a session's caps hold.
 *
 * Input: records of [op, len, len bytes of payload]. An input that starts
 * with 'A' runs with auth on: the identification and the gate are fakes
 * too, which answer at once or later (ops of their own), and check that
 * every check is answered once, that a session never has more than 64
 * SUBSCRIBEs waiting at the gate, and that nothing a check holds is lost
 * when the socket goes first. */
#include "auth/auth.h"
#include "auth/gate.h"
#include "edge.h"
#include "ws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the fake ws.c ---------------------------------------------------- */

struct ws_conn {
    void *session;
    int open;
    int refs; /* 1 for the socket itself while open */
};

static long long frames_out;
static long long bufs_live;

ws_buf *
ws_buf_text(const char *text, size_t len)
{
    ws_buf *b = malloc(sizeof *b + len);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->len = len;
    memcpy(b->data, text, len);
    bufs_live++;
    return b;
}

void
ws_buf_unref(ws_buf *b)
{
    if (b && --b->refs == 0) {
        free(b);
        bufs_live--;
    }
}

int
ws_conn_send(ws_conn *c, ws_buf *b)
{
    if (!c->open)
        return -1;
    frames_out++;
    (void)b; /* "written" at once: no reference kept */
    return 0;
}

int
ws_conn_send_text(ws_conn *c, char *text)
{
    if (text == NULL)
        return -1;
    free(text);
    if (!c->open)
        return -1;
    frames_out++;
    return 0;
}

void
ws_conn_close(ws_conn *c, uint16_t code, const char *reason)
{
    (void)code;
    (void)reason;
    c->open = 0; /* the router's on_close runs when the fake loop reaps it */
}

void *
ws_conn_session(ws_conn *c)
{
    return c->session;
}

void
ws_conn_set_session(ws_conn *c, void *session)
{
    c->session = session;
}

void
ws_conn_ref(ws_conn *c)
{
    c->refs++;
}

void
ws_conn_unref(ws_conn *c)
{
    if (--c->refs == 0)
        free(c);
}

int
ws_conn_alive(ws_conn *c)
{
    return c->open;
}

void
ws_loop_settle_later(ws_loop *l)
{
    (void)l;
}

void
ws_stat_add(int which, long long delta)
{
    (void)which;
    (void)delta;
}

/* No Authorization header on these sockets. */
const char *
ws_conn_authorization(ws_conn *c)
{
    (void)c;
    return NULL;
}

/* ---- auth (inputs that start with 'A'): identification and the gate ---- */

#define MAX_GATING 64 /* ROUTER_MAX_GATING: SUBSCRIBEs at the gate per session */

static int auth_on;
static int fake_auth_storage, fake_auth_loop_storage;
#define FAKE_AUTH ((const gw_auth *)&fake_auth_storage)
#define FAKE_AUTH_LOOP ((gw_auth_loop *)&fake_auth_loop_storage)
static int answer_inline; /* checks decide at once (1) or wait for an op (0) */
static unsigned verdict_seq; /* what the next check says */
static ws_conn *cur_conn;    /* the socket whose message is being handled */

typedef struct ident_wait {
    gw_principal *p;
    gw_auth_cb cb;
    void *closure;
    struct ident_wait *next;
} ident_wait;

typedef struct gate_wait {
    gw_gate *g;
    ws_conn *conn; /* the socket that asked, for the cap (not a reference) */
    struct gate_wait *next;
} gate_wait;

static ident_wait *idents;
static gate_wait *gates;

static void
fill_principal(gw_principal *p, unsigned k)
{
    static const gw_id_result results[] = {GW_ID_OK, GW_ID_ANONYMOUS, GW_ID_INVALID,
                                           GW_ID_UNAVAILABLE, GW_ID_OK};
    memset(p, 0, sizeof *p);
    p->result = results[k % 5];
    snprintf(p->sub, sizeof p->sub, "u%u", k % 3);
    snprintf(p->scopes, sizeof p->scopes, "%s", k % 2 ? "events:publish" : "");
    snprintf(p->why, sizeof p->why, "why %u", k);
}

int
gw_auth_identify(gw_auth_loop *al, const char *authorization, gw_principal *p, gw_auth_cb cb,
                 void *closure)
{
    ident_wait *w;

    (void)authorization;
    if (!auth_on || al != FAKE_AUTH_LOOP)
        abort();
    if (answer_inline) {
        fill_principal(p, verdict_seq++);
        return 1;
    }
    if ((w = calloc(1, sizeof *w)) == NULL)
        abort();
    w->p = p;
    w->cb = cb;
    w->closure = closure;
    w->next = idents;
    idents = w;
    return 0;
}

/* The first identification waiting gets its answer. */
static void
answer_ident(const uint8_t *p, size_t n)
{
    ident_wait *w = idents;

    if (w == NULL)
        return;
    idents = w->next;
    fill_principal(w->p, n ? p[0] : verdict_seq++);
    w->cb(w->closure, w->p);
    free(w);
}

static void
set_verdict(gw_gate *g, unsigned k)
{
    static const int statuses[] = {0, 401, 403, 503, 0};

    g->status = statuses[k % 5];
    snprintf(g->msg, sizeof g->msg, "verdict %u", k);
    g->principal = g->status == 0 && k % 2 ? strdup("{\"sub\":\"u\",\"scopes\":[]}") : NULL;
}

static int
gate_start(gw_gate *g, gw_loop *l, const char *subject, size_t len, int topic, gw_gate_cb cb,
           void *closure)
{
    gate_wait *w;
    int at_gate = 0;

    if (!auth_on || l == NULL || l->auth != FAKE_AUTH_LOOP || len > NRPC_MAX_SUBJECT)
        abort();
    memset(g, 0, sizeof *g);
    memcpy(g->subject, subject, len);
    g->topic = topic;
    g->cb = cb;
    g->closure = closure;
    if (topic) {
        for (w = gates; w; w = w->next)
            at_gate += w->conn == cur_conn && w->g->topic;
        if (at_gate >= MAX_GATING)
            abort(); /* the 65th SUBSCRIBE of a session at the gate */
    }
    if (answer_inline) {
        set_verdict(g, verdict_seq++);
        return 1;
    }
    if ((w = calloc(1, sizeof *w)) == NULL)
        abort();
    w->g = g;
    w->conn = cur_conn;
    w->next = gates;
    gates = w;
    return 0;
}

/* The n-th check waiting at the gate gets its verdict. */
static void
answer_gate(const uint8_t *p, size_t n)
{
    gate_wait **pp = &gates, *w;

    for (size_t i = 0; *pp && (*pp)->next && n > 1 && i < p[1] % 8u; i++)
        pp = &(*pp)->next;
    if ((w = *pp) == NULL)
        return;
    *pp = w->next;
    set_verdict(w->g, n ? p[0] : verdict_seq++);
    w->g->cb(w->g, w->g->closure); /* may free w->g */
    free(w);
}

int
gw_gate_start_as(gw_gate *g, gw_loop *l, const char *subject, size_t len, const gw_principal *p,
                 gw_gate_cb cb, void *closure)
{
    if (p == NULL)
        abort(); /* a session's caller is known before its first CALL */
    return gate_start(g, l, subject, len, 0, cb, closure);
}

int
gw_gate_start_topic(gw_gate *g, gw_loop *l, const char *topic, int prefix, gw_topic_op op,
                    const gw_principal *p, gw_gate_cb cb, void *closure)
{
    (void)prefix;
    if (p == NULL || op != GW_TOPIC_SUBSCRIBE)
        abort();
    return gate_start(g, l, topic, strlen(topic), 1, cb, closure);
}

int
gw_gate_topic_now(gw_loop *l, const char *topic, gw_topic_op op, const gw_principal *p, char *msg,
                  size_t msglen)
{
    static const int statuses[] = {0, 401, 403, 503};

    if (!auth_on || l == NULL || p == NULL || op != GW_TOPIC_PUBLISH)
        abort();
    snprintf(msg, msglen, "topic %s: no", topic);
    return statuses[verdict_seq++ % 4];
}

void
gw_gate_clear(gw_gate *g)
{
    if (g == NULL)
        return;
    if (!auth_on)
        abort(); /* auth off: calls have no gate */
    for (gate_wait *w = gates; w; w = w->next)
        if (w->g == g)
            abort(); /* cleared while its verdict is still owed */
    free(g->principal);
    g->principal = NULL;
}

/* ---- the fake NATS client ---------------------------------------------- */

struct nrpc_subscription {
    char subject[NRPC_MAX_SUBJECT + 1];
    nrpc_message_cb cb;
    void *closure;
    struct nrpc_subscription *next;
};

typedef struct pending {
    nrpc_response_cb cb;
    void *closure;
    struct pending *next;
} pending;

static struct nrpc_subscription *subs;
static pending *requests;
static int nats_up = 1;
static int fake_client_storage;
#define FAKE_CLIENT ((nrpc_client *)&fake_client_storage)

/* The router's own marker inbox (wamp_confirm.c), the one subject besides
 * topics it may subscribe and publish to: "_INBOX." and 32 hex digits. */
static int
is_marker(const char *subject)
{
    size_t i;

    if (strncmp(subject, "_INBOX.", 7) != 0 || strlen(subject) != 7 + 32)
        return 0;
    for (i = 7; subject[i]; i++)
        if (!((subject[i] >= '0' && subject[i] <= '9') || (subject[i] >= 'a' && subject[i] <= 'f')))
            return 0;
    return 1;
}

nrpc_status
nrpc_client_subscribe(nrpc_client *c, const char *subject, nrpc_message_cb cb, void *closure,
                      nrpc_subscription **out)
{
    struct nrpc_subscription *s;

    if (c != FAKE_CLIENT || strlen(subject) > NRPC_MAX_SUBJECT)
        abort(); /* the router must check subjects before NATS sees them */
    if (strncmp(subject, NRPC_EVENT_PREFIX, strlen(NRPC_EVENT_PREFIX)) != 0 && !is_marker(subject))
        abort(); /* a topic never leaves the events space */
    if (!nats_up)
        return NRPC_ERR_STATE;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return NRPC_ERR_NOMEM;
    snprintf(s->subject, sizeof s->subject, "%s", subject);
    s->cb = cb;
    s->closure = closure;
    s->next = subs;
    subs = s;
    *out = s;
    return NRPC_OK;
}

void
nrpc_client_unsubscribe(nrpc_subscription *sub)
{
    struct nrpc_subscription **pp;

    if (sub == NULL) /* NULL-safe, as the real one */
        return;
    for (pp = &subs; *pp; pp = &(*pp)->next) {
        if (*pp == sub) {
            *pp = sub->next;
            free(sub);
            return;
        }
    }
    abort(); /* unsubscribed twice, or never subscribed */
}

nrpc_status
nrpc_client_publish(nrpc_client *c, const char *subject, const char *data, size_t len,
                    const char *const *headers)
{
    (void)data;
    (void)len;
    (void)headers;
    if (c != FAKE_CLIENT || strlen(subject) > NRPC_MAX_SUBJECT)
        abort();
    /* A publication never lands on an rpc subject. */
    if (strncmp(subject, NRPC_EVENT_PREFIX, strlen(NRPC_EVENT_PREFIX)) != 0 && !is_marker(subject))
        abort();
    return nats_up ? NRPC_OK : NRPC_ERR_STATE;
}

nrpc_status
nrpc_client_request(nrpc_client *c, const char *subject, const char *data, size_t len,
                    int64_t timeout_ms, const char *const *headers, nrpc_response_cb cb,
                    void *closure)
{
    pending *p;

    (void)data;
    (void)len;
    (void)headers;
    if (c != FAKE_CLIENT || !nrpc_subject_is_rpc(subject, strlen(subject)) || timeout_ms <= 0)
        abort();
    if (!nats_up)
        return NRPC_ERR_STATE;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return NRPC_ERR_NOMEM;
    p->cb = cb;
    p->closure = closure;
    p->next = requests;
    requests = p;
    return NRPC_OK;
}

const char *
nrpc_message_header(const nrpc_message *msg, const char *name)
{
    const char *const *h = msg->impl;

    for (; h && h[0]; h += 2)
        if (strcmp(h[0], name) == 0)
            return h[1];
    return NULL;
}

/* Answers the first pending request with what the payload says. */
static void
answer_one(const uint8_t *p, size_t n)
{
    static const int codes[] = {0, 400, 404, 413, 500, 503, 504, 499, 302, 0};
    pending *q = requests;
    nrpc_response resp;
    char body[300];

    if (q == NULL)
        return;
    requests = q->next;
    resp.code = codes[(n ? p[0] : 0) % 10];
    if (n > 1 && (p[1] & 1)) {
        size_t k = n - 2 < sizeof body - 1 ? n - 2 : sizeof body - 1;
        memcpy(body, p + 2, k);
        body[k] = '\0';
    } else if (resp.code == 0) {
        snprintf(body, sizeof body, "[[\"r\"], {\"k\": %d}]", n > 1 ? p[1] : 0);
    } else {
        snprintf(body, sizeof body,
                 "{\"error\": {\"code\": %d, \"type\": \"t\", \"message\": \"m\"}}", resp.code);
    }
    resp.data = body;
    resp.len = strlen(body);
    q->cb(&resp, q->closure);
    free(q);
}

/* A NATS message on the n-th subscription. */
static void
deliver_one(const uint8_t *p, size_t n)
{
    struct nrpc_subscription *s = subs;
    const char *headers[5] = {NULL};
    char subject[NRPC_MAX_SUBJECT + 1], body[200], pub[24], sess[24];
    nrpc_message msg;
    size_t i, k;

    for (i = 0; s && n > 0 && i < p[0] % 4; i++)
        s = s->next;
    if (s == NULL)
        return;
    snprintf(subject, sizeof subject, "%s", s->subject);
    k = strlen(subject);
    if (k > 2 && strcmp(subject + k - 2, ".>") == 0) /* a prefix: one topic under it */
        snprintf(subject + k - 1, sizeof subject - (k - 1), "x");
    k = n > 1 ? n - 1 : 0;
    if (k > sizeof body - 1)
        k = sizeof body - 1;
    memcpy(body, p + (n > 1 ? 1 : 0), k);
    body[k] = '\0';
    snprintf(pub, sizeof pub, "%u", n > 1 ? p[1] : 7u);
    snprintf(sess, sizeof sess, "%u", n > 2 ? p[2] : 9u);
    headers[0] = "Nrpc-Wamp-Publication";
    headers[1] = pub;
    headers[2] = "Nrpc-Wamp-Session";
    headers[3] = sess;
    msg.subject = subject;
    msg.reply = n > 0 && (p[0] & 0x10) ? "_INBOX.x" : NULL;
    msg.data = body;
    msg.len = k;
    msg.impl = headers;
    s->cb(&msg, s->closure);
}

/* ---- the session ------------------------------------------------------- */

static ws_conn *
conn_open(void)
{
    ws_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        abort();
    c->open = 1;
    c->refs = 1;
    return c;
}

/* The loop reaps a closed socket: the router hears of it, the socket's
 * reference goes. */
static void
conn_reap(wamp_router *r, ws_conn *c)
{
    wamp_router_on_close(r, c);
    ws_conn_unref(c);
}

/* A printable URI-ish text from the payload: mostly valid topic bytes. */
static void
uri_from(const uint8_t *p, size_t n, char *out, size_t cap)
{
    static const char alphabet[] = "abc._-XYZ09.$*>. \xff";
    size_t i;

    for (i = 0; i < n && i < cap - 1; i++)
        out[i] = alphabet[p[i] % (sizeof alphabet - 1)];
    out[i] = '\0';
    if (i == 0)
        snprintf(out, cap, "a.b");
}

static void
send_text(wamp_router *r, ws_conn *c, const char *text)
{
    wamp_router_on_message(r, c, WS_OP_TEXT, (const uint8_t *)text, strlen(text));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_config cfg = {.wamp_realm = "realm1", .timeout_ms = 1000, .wamp_max_subs = 4,
                     .wamp_publish_rate = 3, .wamp_max_calls = 3};
    gw_loop gl = {.cfg = &cfg, .auth = FAKE_AUTH_LOOP};
    wamp_router *r;
    ws_conn *c;
    char text[1200], uri[300];
    size_t at = 0;
    unsigned id = 1;

    auth_on = size > 0 && data[0] == 'A';
    if (auth_on) {
        cfg.auth = FAKE_AUTH;
        cfg.wamp_max_subs = 100; /* so that the gate's cap of 64 is what refuses */
        at = 1;
    }
    answer_inline = 0;
    verdict_seq = 0;
    if ((r = wamp_router_create(NULL, &cfg, FAKE_CLIENT)) == NULL)
        return 0;
    if (auth_on)
        wamp_router_set_loop(r, &gl);
    c = conn_open();
    nats_up = 1;
    while (at + 2 <= size) {
        uint8_t op = data[at];
        size_t n = data[at + 1];
        const uint8_t *p = data + at + 2;

        if (n > size - at - 2)
            n = size - at - 2;
        at += 2 + n;
        if (!c->open) { /* a new socket */
            conn_reap(r, c);
            c = conn_open();
        }
        cur_conn = c;
        if (auth_on && op % 16 >= 12) {
            switch (op % 16) {
            case 12: answer_ident(p, n); break;
            case 13: answer_gate(p, n); break;
            case 14: answer_inline = !answer_inline; break;
            case 15: send_text(r, c, (op & 0x40) ? "[5, \"ticket-text\", {}]"
                                                 : "[1, \"realm1\", {\"authmethods\": [\"ticket\"]}]");
                     break;
            }
            continue;
        }
        switch (op % 12) {
        case 0: /* junk, or anything the decoder takes */
            wamp_router_on_message(r, c, (op & 0x80) ? WS_OP_BINARY : WS_OP_TEXT, p, n);
            break;
        case 1:
            snprintf(text, sizeof text, "[1, \"%s\", {}]", (op & 0x40) ? "realm2" : "realm1");
            send_text(r, c, text);
            break;
        case 2:
            uri_from(p, n, uri, sizeof uri);
            snprintf(text, sizeof text, "[32, %u, {%s}, \"%s\"]", id++,
                     (op & 0x40) ? "\"match\": \"prefix\"" : (op & 0x20) ? "\"match\": 3" : "",
                     uri);
            send_text(r, c, text);
            break;
        case 3:
            uri_from(p, n, uri, sizeof uri);
            snprintf(text, sizeof text,
                     "[16, %u, {\"acknowledge\": %s, \"exclude_me\": %s}, \"%s\", [1], {\"a\": 2}]",
                     id++, (op & 0x40) ? "true" : "false", (op & 0x20) ? "false" : "true", uri);
            send_text(r, c, text);
            break;
        case 4:
            uri_from(p, n, uri, sizeof uri);
            snprintf(text, sizeof text, "[48, %u, {\"timeout\": %d}, \"%s\", [\"x\"]]", id++,
                     (op & 0x40) ? 5 : -1, uri);
            send_text(r, c, text);
            break;
        case 5:
            snprintf(text, sizeof text, "[34, %u, %u]", id++, n ? p[0] % 8 : 1);
            send_text(r, c, text);
            break;
        case 6:
            send_text(r, c, "[6, {}, \"wamp.close.close_realm\"]");
            break;
        case 7: answer_one(p, n); break;
        case 8: deliver_one(p, n); break;
        case 9: c->open = 0; break; /* the peer went away */
        case 10: nats_up = !nats_up; break;
        case 11: {
            static const char *const other[] = {
                "[64, 1, {}, \"a.b\"]", "[66, 1, 1]", "[49, 1, {}]", "[3, {}, \"x\"]",
                "[70, 1, {}]", "[8, 48, 1, {}, \"e\"]", "[36, 1, 1, {}, [1]]", "[2, 1, {}]"};
            send_text(r, c, other[(n ? p[0] : 0) % 8]);
            break;
        }
        }
    }
    /* The socket goes; then the checks and NATS answer what is still
     * pending (a verdict or a reply after the session is gone must be
     * harmless). */
    c->open = 0;
    while (idents || gates) {
        answer_ident(NULL, 0);
        answer_gate(NULL, 0);
    }
    while (requests)
        answer_one(NULL, 0);
    conn_reap(r, c);
    for (struct nrpc_subscription *s = subs; s; s = s->next)
        if (!is_marker(s->subject))
            abort(); /* every subscription of a closed session released */
    wamp_router_destroy(r);
    if (subs != NULL || bufs_live != 0)
        abort(); /* the router's marker inbox too */
    return 0;
}
