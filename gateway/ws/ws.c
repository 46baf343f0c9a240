/*
 * ws.c: the upgraded WebSockets of one gateway loop (gateway.h's gw_loop).
 *
 * GET /websocket is answered by the loop's MHD daemon (gw_ws_upgrade): the
 * handshake is checked there, MHD sends the 101 and hands us the socket in
 * ws_on_upgrade, on the same thread, since MHD runs on the loop. From then
 * on the socket is the loop's: a uv_poll on the descriptor, a frame reader
 * (ws_frame.c) and an outgoing queue. No thread per socket, no lock, and no
 * hand-off on the way from a socket to the WAMP router (wamp_router.c) or
 * from the loop's NATS connection back to the sockets.
 *
 * Memory per idle socket: the ws_conn and its session. The read buffer is
 * the loop's scratch space; a socket keeps bytes of its own only while a
 * frame is incomplete, and queues only what the kernel would not take.
 *
 * Fan-out: one event is encoded and framed once (a ws_buf) and queued by
 * reference on every subscribed socket of the loop. Writes are batched:
 * sending marks the socket dirty and the dirty sockets are flushed with one
 * writev each at the end of the socket callback, or, for what NATS brought
 * (events, replies to calls), by a uv_prepare just before the loop polls
 * again, so a burst drained from NATS in one go is written in one go. A
 * socket whose queue passes GATEWAY_WS_MAX_QUEUE is dropped (counted as
 * dropped_slow): a slow browser never holds up the others, nor NATS.
 *
 * Closing goes through one door, conn_kill: the connection is marked dead
 * and reaped at the next settle (so the router may kill sockets while
 * iterating a topic's subscribers), its poll handle is closed, and in the
 * close callback the socket goes back to MHD (MHD_upgrade_action CLOSE),
 * which closes it. The ws_conn itself lives until its last reference
 * (calls waiting for NATS hold one) is dropped.
 */
#include "ws.h"

#include <microhttpd.h>
#include <uv.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define WS_SCRATCH (64 * 1024)
#define WS_CLOSE_WAIT_MS 2000            /* after our close frame, for the peer's */
#define WS_MAX_IOV 64
#define WS_PROTOCOL "wamp.2.json"

enum { CONN_OPEN, CONN_CLOSING, CONN_DEAD };

struct ws_conn {
    gw_ws *loop;
    uv_poll_t poll;
    int poll_ok;   /* poll initialised: close it before the socket */
    int poll_mask; /* events being watched */
    MHD_socket fd;
    struct MHD_UpgradeResponseHandle *urh;
    int refs;
    int state;
    int close_sent;
    int finish_after_flush; /* the peer closed: end once the queue is written */
    int dirty;              /* on the loop's dirty list */
    int reaping;            /* on the loop's reap list */
    ws_reader rd;
    uint8_t *in; /* an incomplete frame, when there is one */
    size_t in_len, in_cap;
    ws_buf **q; /* outgoing frames: a ring */
    size_t q_head, q_len, q_cap, q_off, q_bytes;
    int64_t last_rx_ms, ping_sent_ms, close_deadline_ms;
    int64_t idle_since_ms; /* when it last had no WAMP session (open, or GOODBYE) */
    void *session;
    struct ws_conn *prev, *next; /* every open connection */
    struct ws_conn *dirty_next, *reap_next;
    size_t extra_len; /* bytes MHD read past the request, processed first */
    uint8_t *extra;
    char *authorization; /* the handshake's credentials (GATEWAY_AUTH), or NULL */
};

struct gw_ws {
    uv_loop_t *uv;     /* the gateway loop's */
    uv_timer_t timer;  /* keep-alive pings, hello and close deadlines */
    uv_prepare_t prep; /* settles what NATS callbacks queued */
    int handles_open;  /* timer, prep: freed in the last close callback */
    void (*handed_back)(void *arg); /* a socket went back to MHD: run it */
    void *handed_back_arg;
    int settle_due;

    size_t max_message, max_queue;
    int64_t ping_ms;
    int64_t hello_ms; /* a socket without a session this long is closed */
    char *origins;    /* GATEWAY_WS_ORIGINS and GATEWAY_CORS_ORIGINS, joined */
    int quiescing;
    ws_conn *conns;
    ws_conn *dirty, *reap;
    uint8_t *scratch;
    wamp_router *router;
};

static atomic_llong ws_stats[WS_STAT_COUNT];

void
ws_stat_add(int which, long long delta)
{
    atomic_fetch_add_explicit(&ws_stats[which], delta, memory_order_relaxed);
}

void
gw_ws_stats_read(gw_ws_stats *out)
{
#define RD(f, i) out->f = atomic_load_explicit(&ws_stats[i], memory_order_relaxed)
    RD(sockets_open, WS_STAT_SOCKETS_OPEN);
    RD(sockets_total, WS_STAT_SOCKETS_TOTAL);
    RD(sessions, WS_STAT_SESSIONS);
    RD(topics, WS_STAT_TOPICS);
    RD(subscriptions, WS_STAT_SUBSCRIPTIONS);
    RD(dropped_slow, WS_STAT_DROPPED_SLOW);
    RD(dropped_dead, WS_STAT_DROPPED_DEAD);
    RD(messages_in, WS_STAT_MESSAGES_IN);
    RD(events_out, WS_STAT_EVENTS_OUT);
    RD(nats_dropped, WS_STAT_NATS_DROPPED);
    RD(calls, WS_STAT_CALLS);
    RD(publishes, WS_STAT_PUBLISHES);
#undef RD
}

static void *
ws_xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        nrpc_log(NRPC_LOG_ERROR, "out of memory (%zu bytes)", n);
        abort();
    }
    return p;
}

/* ---------------------------------------------------------------------------
 * Frames to send.
 */

static ws_buf *
ws_buf_frame(int opcode, const void *payload, size_t len)
{
    uint8_t hdr[10];
    size_t h = ws_frame_header(hdr, 1, opcode, len);
    ws_buf *b = malloc(sizeof *b + h + len);

    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->len = h + len;
    memcpy(b->data, hdr, h);
    if (len > 0)
        memcpy(b->data + h, payload, len);
    return b;
}

ws_buf *
ws_buf_text(const char *text, size_t len)
{
    return ws_buf_frame(WS_OP_TEXT, text, len);
}

void
ws_buf_unref(ws_buf *b)
{
    if (b && --b->refs == 0)
        free(b);
}

/* ---------------------------------------------------------------------------
 * Connection life cycle.
 */

static void conn_flush(ws_conn *c);
static void conn_on_poll(uv_poll_t *h, int status, int events);

void
ws_conn_ref(ws_conn *c)
{
    c->refs++;
}

void
ws_conn_unref(ws_conn *c)
{
    if (--c->refs > 0)
        return;
    free(c->authorization);
    free(c);
}

int
ws_conn_alive(ws_conn *c)
{
    return c->state == CONN_OPEN;
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

/* Marks c dead; the loop reaps it at the end of the current callback. */
static void
conn_kill(ws_conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    c->state = CONN_DEAD;
    if (!c->reaping) {
        c->reaping = 1;
        c->reap_next = c->loop->reap;
        c->loop->reap = c;
    }
}

static void
conn_on_poll_closed(uv_handle_t *h)
{
    ws_conn *c = h->data;

    /* The loop no longer watches the socket: MHD may close it now, which
     * it does in its next run. */
    MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
    c->loop->handed_back(c->loop->handed_back_arg);
    ws_conn_unref(c);
}

/* Frees everything of a dead connection but the struct (refs may hold it). */
static void
conn_release(ws_conn *c)
{
    gw_ws *l = c->loop;

    wamp_router_on_close(l->router, c);
    if (c->prev)
        c->prev->next = c->next;
    else if (l->conns == c)
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    while (c->q_len > 0) {
        ws_buf_unref(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_len--;
    }
    free(c->q);
    c->q = NULL;
    free(c->in);
    c->in = NULL;
    free(c->extra);
    c->extra = NULL;
    ws_reader_free(&c->rd);
    ws_stat_add(WS_STAT_SOCKETS_OPEN, -1);
    if (c->poll_ok) {
        uv_poll_stop(&c->poll);
        uv_close((uv_handle_t *)&c->poll, conn_on_poll_closed);
    } else {
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
        l->handed_back(l->handed_back_arg);
        ws_conn_unref(c);
    }
}

/* End of every loop callback: write what was queued, then reap the dead. */
static void
loop_settle(gw_ws *l)
{
    while (l->dirty || l->reap) {
        while (l->dirty) {
            ws_conn *c = l->dirty;
            l->dirty = c->dirty_next;
            c->dirty = 0;
            if (c->state != CONN_DEAD)
                conn_flush(c);
        }
        while (l->reap) {
            ws_conn *c = l->reap;
            l->reap = c->reap_next;
            conn_release(c);
        }
    }
}

static void
conn_set_poll(ws_conn *c)
{
    int mask = 0;

    if (!c->poll_ok || c->state == CONN_DEAD)
        return;
    if (!c->finish_after_flush)
        mask |= UV_READABLE;
    if (c->q_len > 0)
        mask |= UV_WRITABLE;
    if (mask != c->poll_mask) {
        c->poll_mask = mask;
        if (mask)
            uv_poll_start(&c->poll, mask, conn_on_poll);
        else
            uv_poll_stop(&c->poll);
    }
}

/* Writes as much of the queue as the socket takes. */
static void
conn_flush(ws_conn *c)
{
    while (c->q_len > 0) {
        struct iovec iov[WS_MAX_IOV];
        struct msghdr mh;
        size_t n = 0, i;
        ssize_t w;

        for (i = 0; i < c->q_len && n < WS_MAX_IOV; i++, n++) {
            ws_buf *b = c->q[(c->q_head + i) % c->q_cap];
            size_t off = i == 0 ? c->q_off : 0;
            iov[n].iov_base = b->data + off;
            iov[n].iov_len = b->len - off;
        }
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = n;
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_kill(c); /* reset by peer, broken pipe */
            return;
        }
        c->q_bytes -= (size_t)w;
        while (w > 0) {
            ws_buf *b = c->q[c->q_head];
            size_t left = b->len - c->q_off;
            if ((size_t)w < left) {
                c->q_off += (size_t)w;
                break;
            }
            w -= (ssize_t)left;
            c->q_off = 0;
            ws_buf_unref(b);
            c->q_head = (c->q_head + 1) % c->q_cap;
            c->q_len--;
        }
    }
    if (c->q_len == 0 && c->finish_after_flush) {
        conn_kill(c);
        return;
    }
    conn_set_poll(c);
}

/* Appends b to c's queue (a new reference). Bypasses the closing check, for
 * the close frame itself. */
static int
conn_queue(ws_conn *c, ws_buf *b)
{
    gw_ws *l = c->loop;

    if (c->state == CONN_DEAD)
        return -1;
    /* Writes are batched to the end of the loop callback, but a burst can
     * queue more than the limit within one callback: before calling a
     * socket slow, let it take what it can now. */
    if (c->q_bytes + b->len > l->max_queue && c->q_len > 0) {
        conn_flush(c);
        if (c->state == CONN_DEAD)
            return -1;
    }
    if (c->q_bytes + b->len > l->max_queue) {
        ws_stat_add(WS_STAT_DROPPED_SLOW, 1);
        nrpc_log(NRPC_LOG_WARN,
                 "websocket: dropping a slow socket (%zu bytes queued, limit "
                 "GATEWAY_WS_MAX_QUEUE=%zu)",
                 c->q_bytes, l->max_queue);
        conn_kill(c);
        return -1;
    }
    if (c->q_len == c->q_cap) {
        size_t cap = c->q_cap ? c->q_cap * 2 : 8, i;
        ws_buf **q = ws_xmalloc(cap * sizeof *q);
        for (i = 0; i < c->q_len; i++)
            q[i] = c->q[(c->q_head + i) % c->q_cap];
        free(c->q);
        c->q = q;
        c->q_cap = cap;
        c->q_head = 0;
    }
    c->q[(c->q_head + c->q_len) % c->q_cap] = b;
    b->refs++;
    c->q_len++;
    c->q_bytes += b->len;
    if (!c->dirty) {
        c->dirty = 1;
        c->dirty_next = l->dirty;
        l->dirty = c;
    }
    return 0;
}

int
ws_conn_send(ws_conn *c, ws_buf *b)
{
    if (c->state != CONN_OPEN)
        return -1;
    return conn_queue(c, b);
}

int
ws_conn_send_text(ws_conn *c, char *text)
{
    ws_buf *b;
    int rc;

    if (text == NULL)
        return -1;
    b = ws_buf_text(text, strlen(text));
    free(text);
    if (b == NULL)
        return -1;
    rc = ws_conn_send(c, b);
    ws_buf_unref(b);
    return rc;
}

/* Queues a control frame, whatever the state short of dead. */
static void
conn_control(ws_conn *c, int opcode, const void *payload, size_t len)
{
    ws_buf *b = ws_buf_frame(opcode, payload, len);

    if (b == NULL) {
        conn_kill(c);
        return;
    }
    conn_queue(c, b);
    ws_buf_unref(b);
}

void
ws_conn_close(ws_conn *c, uint16_t code, const char *reason)
{
    uint8_t p[125];
    size_t rlen = reason ? strlen(reason) : 0;

    if (c->state == CONN_DEAD || c->close_sent)
        return;
    if (rlen > sizeof p - 2)
        rlen = sizeof p - 2;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rlen)
        memcpy(p + 2, reason, rlen);
    c->close_sent = 1;
    c->state = CONN_CLOSING;
    c->close_deadline_ms = nrpc_now_ms() + WS_CLOSE_WAIT_MS;
    conn_control(c, WS_OP_CLOSE, p, 2 + rlen);
}

/* ---------------------------------------------------------------------------
 * Reading.
 */

/* Parses buf (len bytes); returns how many were consumed. */
static size_t
conn_process(ws_conn *c, uint8_t *buf, size_t len)
{
    gw_ws *l = c->loop;
    size_t off = 0, used;
    ws_event ev;

    while (c->state != CONN_DEAD && !c->finish_after_flush && off < len) {
        ws_event_kind k = ws_reader_next(&c->rd, buf + off, len - off, &used, &ev);

        if (k == WS_EV_NEED_MORE)
            break;
        off += used;
        switch (k) {
        case WS_EV_MESSAGE:
            ws_stat_add(WS_STAT_MESSAGES_IN, 1);
            if (c->state == CONN_OPEN)
                wamp_router_on_message(l->router, c, ev.opcode, ev.data, ev.len);
            break;
        case WS_EV_PING:
            if (!c->close_sent)
                conn_control(c, WS_OP_PONG, ev.data, ev.len);
            break;
        case WS_EV_CLOSE:
            /* Echo the code (none for none) and end once it is written. */
            if (!c->close_sent) {
                uint8_t p[2] = {(uint8_t)(ev.code >> 8), (uint8_t)ev.code};
                c->close_sent = 1;
                conn_control(c, WS_OP_CLOSE, p, ev.code == WS_CLOSE_NO_STATUS ? 0 : 2);
            }
            if (c->state == CONN_OPEN)
                c->state = CONN_CLOSING;
            c->finish_after_flush = 1;
            if (c->q_len == 0)
                conn_kill(c);
            break;
        case WS_EV_ERROR:
            ws_conn_close(c, ev.code, ev.reason);
            c->finish_after_flush = 1; /* nothing more will make sense */
            return len;
        default: break;
        }
    }
    return off;
}

static void
conn_read(ws_conn *c)
{
    gw_ws *l = c->loop;
    size_t max = ws_reader_max_frame(&c->rd), used;
    uint8_t *buf;
    size_t room;
    ssize_t n;

    if (c->in_len == 0) {
        buf = l->scratch;
        room = WS_SCRATCH;
    } else {
        /* An incomplete frame is waiting: read after it, with room for the
         * largest frame allowed. */
        if (c->in_cap - c->in_len < 16 * 1024 && c->in_cap < max + WS_SCRATCH) {
            size_t cap = c->in_cap * 2;
            if (cap < c->in_len + WS_SCRATCH)
                cap = c->in_len + WS_SCRATCH;
            if (cap > max + WS_SCRATCH)
                cap = max + WS_SCRATCH;
            c->in = realloc(c->in, cap);
            if (c->in == NULL) {
                nrpc_log(NRPC_LOG_ERROR, "out of memory (%zu bytes)", cap);
                abort();
            }
            c->in_cap = cap;
        }
        buf = c->in;
        room = c->in_cap - c->in_len;
    }
    n = recv(c->fd, buf + (buf == c->in ? c->in_len : 0), room, 0);
    if (n == 0) {
        conn_kill(c); /* the peer went away without a close frame */
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_kill(c);
        return;
    }
    c->last_rx_ms = nrpc_now_ms();
    if (buf == l->scratch) {
        used = conn_process(c, buf, (size_t)n);
        if (used < (size_t)n && c->state != CONN_DEAD && !c->finish_after_flush) {
            size_t left = (size_t)n - used, cap = left < 4096 ? 4096 : left;
            c->in = ws_xmalloc(cap);
            c->in_cap = cap;
            memcpy(c->in, buf + used, left);
            c->in_len = left;
        }
    } else {
        c->in_len += (size_t)n;
        used = conn_process(c, c->in, c->in_len);
        if (used > 0) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
        }
        if (c->in_len == 0) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
    }
}

static void
conn_on_poll(uv_poll_t *h, int status, int events)
{
    ws_conn *c = h->data;

    if (status < 0)
        conn_kill(c);
    if (c->state != CONN_DEAD && (events & UV_WRITABLE))
        conn_flush(c);
    if (c->state != CONN_DEAD && !c->finish_after_flush && (events & UV_READABLE))
        conn_read(c);
    loop_settle(c->loop);
}

/* ---------------------------------------------------------------------------
 * Work that NATS callbacks queued.
 */

static void
loop_on_prepare(uv_prepare_t *h)
{
    gw_ws *l = h->data;

    wamp_router_prepare(l->router);
    if (!l->settle_due)
        return;
    l->settle_due = 0;
    loop_settle(l);
}

void
ws_loop_settle_later(gw_ws *l)
{
    l->settle_due = 1;
}

wamp_router *
ws_loop_router(gw_ws *l)
{
    return l->router;
}

/* Keep-alive: a ping after ping_ms of silence; a socket that stays silent
 * for another ping_ms is dead. Also ends close handshakes the peer never
 * finished. */
static void
loop_on_timer(uv_timer_t *h)
{
    gw_ws *l = h->data;
    int64_t now = nrpc_now_ms();
    ws_conn *c;

    for (c = l->conns; c; c = c->next) {
        if (c->state == CONN_DEAD)
            continue;
        if (c->close_sent) {
            if (now >= c->close_deadline_ms)
                conn_kill(c);
            continue;
        }
        /* Pings keep a socket alive, so one that never says HELLO would
         * hold its descriptor and memory for ever. */
        if (c->session != NULL && wamp_session_established(c->session)) {
            c->idle_since_ms = now;
        } else if (l->hello_ms > 0 && now - c->idle_since_ms >= l->hello_ms) {
            nrpc_log(NRPC_LOG_INFO, "websocket: no WAMP session after %lld ms; closing",
                     (long long)l->hello_ms);
            ws_conn_close(c, 1008, "no WAMP session");
            continue;
        }
        if (l->ping_ms <= 0)
            continue;
        if (c->ping_sent_ms > c->last_rx_ms) {
            if (now - c->ping_sent_ms >= l->ping_ms) {
                ws_stat_add(WS_STAT_DROPPED_DEAD, 1);
                nrpc_log(NRPC_LOG_INFO, "websocket: no answer to a ping in %lld ms; dropping",
                         (long long)l->ping_ms);
                conn_kill(c);
            }
        } else if (now - c->last_rx_ms >= l->ping_ms) {
            c->ping_sent_ms = now;
            conn_control(c, WS_OP_PING, NULL, 0);
        }
    }
    wamp_router_tick(l->router, now);
    loop_settle(l);
}

/* ---------------------------------------------------------------------------
 * New sockets.
 */

static void
loop_add_conn(gw_ws *l, void *arg)
{
    ws_conn *c = arg;
    int one = 1;

    ws_stat_add(WS_STAT_SOCKETS_OPEN, 1);
    ws_stat_add(WS_STAT_SOCKETS_TOTAL, 1);
    c->prev = NULL;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    c->last_rx_ms = c->idle_since_ms = nrpc_now_ms();
    l->settle_due = 1; /* MHD calls us: nobody else settles after */
    if (l->quiescing) {
        conn_kill(c);
        return;
    }
    /* Events are small and latency matters more than packet count. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (uv_poll_init_socket(l->uv, &c->poll, c->fd) != 0) {
        nrpc_log(NRPC_LOG_WARN, "websocket: cannot watch the socket");
        conn_kill(c);
        return;
    }
    c->poll.data = c;
    c->poll_ok = 1;
    c->poll_mask = UV_READABLE;
    uv_poll_start(&c->poll, UV_READABLE, conn_on_poll);
    if (c->extra_len > 0) {
        /* The first frames may have come with the request. */
        size_t used = conn_process(c, c->extra, c->extra_len);
        if (used < c->extra_len && c->state != CONN_DEAD && !c->finish_after_flush) {
            c->in = c->extra;
            c->in_cap = c->extra_len;
            memmove(c->in, c->in + used, c->extra_len - used);
            c->in_len = c->extra_len - used;
            c->extra = NULL;
        }
        free(c->extra);
        c->extra = NULL;
        c->extra_len = 0;
    }
}

/* The handshake's credentials, for a session identified at HELLO: the
 * Authorization header, else the cookie natsrpc_token as a bearer token
 * (what a browser can send). The browser adds the cookie to whatever page
 * opens the socket, so it counts only for a page the gateway knows by
 * name (gw_origin_known): with GATEWAY_WS_ORIGINS=* any other site's page
 * gets an anonymous session, not its visitor's. Too long: kept as is,
 * refused at HELLO. */
static void
ws_conn_keep_authorization(gw_ws *l, ws_conn *c, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "natsrpc_token");

    if (cookie != NULL &&
        !gw_origin_known(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN),
                         MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
                         l->origins))
        cookie = NULL;
    if (h != NULL)
        c->authorization = strdup(h);
    else if (cookie != NULL && (c->authorization = malloc(strlen(cookie) + 8)) != NULL)
        sprintf(c->authorization, "Bearer %s", cookie);
}

const char *
ws_conn_authorization(ws_conn *c)
{
    return c->authorization;
}

/* The loop (inside MHD_run), after the 101 went out: the socket is ours. */
static void
ws_on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
              size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    gw_ws *l = cls;
    ws_conn *c = calloc(1, sizeof *c);

    if (c == NULL) {
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    c->loop = l;
    c->fd = sock;
    c->urh = urh;
    c->refs = 1; /* dropped in the poll's close callback */
    c->state = CONN_OPEN;
    c->rd.max_message = l->max_message;
    c->rd.require_mask = 1;
    if (extra_in_size > 0) {
        c->extra = malloc(extra_in_size);
        if (c->extra == NULL) {
            free(c);
            MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
            return;
        }
        memcpy(c->extra, extra_in, extra_in_size);
        c->extra_len = extra_in_size;
    }
    ws_conn_keep_authorization(l, c, connection);
    loop_add_conn(l, c);
}

/* Answers a handshake error with a JSON body like every other error. */
static int
ws_refuse(struct MHD_Connection *conn, int status, const char *message, int *out_status)
{
    json_t *body =
        nrpc_error_body(status, status == 503 ? "unavailable" : "invalid_argument", message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    json_decref(body);
    if (text == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == MHD_HTTP_UPGRADE_REQUIRED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SEC_WEBSOCKET_VERSION, "13");
    }
    ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    *out_status = status;
    return ret;
}

int
gw_ws_upgrade(gw_ws *l, struct MHD_Connection *conn, int *status)
{
    const char *upgrade, *connection, *version, *key, *protocol;
    struct MHD_Response *resp;
    char accept[29];
    enum MHD_Result ret;

    upgrade = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
    connection = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION);
    version =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_SEC_WEBSOCKET_VERSION);
    key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_SEC_WEBSOCKET_KEY);
    protocol =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_SEC_WEBSOCKET_PROTOCOL);

    if (l == NULL)
        return ws_refuse(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "WebSockets are not enabled", status);
    if (l->quiescing)
        return ws_refuse(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the gateway is shutting down",
                         status);
    if (!ws_header_has_token(upgrade, "websocket") || !ws_header_has_token(connection, "upgrade"))
        return ws_refuse(conn, MHD_HTTP_UPGRADE_REQUIRED,
                         "this is a WebSocket endpoint (WAMP, subprotocol " WS_PROTOCOL
                         "): send Upgrade: websocket",
                         status);
    if (version == NULL || strcmp(version, "13") != 0)
        return ws_refuse(conn, MHD_HTTP_UPGRADE_REQUIRED, "Sec-WebSocket-Version must be 13",
                         status);
    if (ws_accept_key(key, accept) != 0)
        return ws_refuse(conn, MHD_HTTP_BAD_REQUEST, "Sec-WebSocket-Key must be 16 bytes in base64",
                         status);
    /* A page of another site must not act for the browser's user here
     * (cross-site WebSocket hijacking): browsers always say where the
     * page came from. */
    if (!gw_origin_allowed(
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN),
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
            l->origins))
        return ws_refuse(conn, MHD_HTTP_FORBIDDEN,
                         "this page's origin may not open the WebSocket (GATEWAY_CORS_ORIGINS, GATEWAY_WS_ORIGINS)",
                         status);
    if (!ws_header_has_token(protocol, WS_PROTOCOL))
        return ws_refuse(conn, MHD_HTTP_BAD_REQUEST,
                         "no subprotocol we speak: offer " WS_PROTOCOL " in Sec-WebSocket-Protocol",
                         status);

    resp = MHD_create_response_for_upgrade(ws_on_upgrade, l);
    if (resp == NULL)
        return MHD_NO;
    /* MHD adds "Connection: Upgrade" itself; adding it again breaks Safari. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SEC_WEBSOCKET_ACCEPT, accept);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SEC_WEBSOCKET_PROTOCOL, WS_PROTOCOL);
    ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    *status = MHD_HTTP_SWITCHING_PROTOCOLS;
    return ret;
}

/* ---------------------------------------------------------------------------
 * Start and stop, on the loop.
 */

void
gw_ws_set_loop(gw_ws *l, gw_loop *gl)
{
    if (l)
        wamp_router_set_loop(l->router, gl);
}

nrpc_status
gw_ws_start(gw_ws **out, uv_loop_t *uv, const gw_config *cfg, nrpc_client *client,
            void (*handed_back)(void *arg), void *arg)
{
    gw_ws *l = calloc(1, sizeof *l);
    int64_t tick;

    if (l == NULL)
        return NRPC_ERR_NOMEM;
    l->uv = uv;
    l->handed_back = handed_back;
    l->handed_back_arg = arg;
    l->max_message = cfg->ws_max_message ? cfg->ws_max_message : 1024 * 1024;
    l->max_queue = cfg->ws_max_queue ? cfg->ws_max_queue : 4 * 1024 * 1024;
    l->ping_ms = cfg->ws_ping_ms;
    l->hello_ms = cfg->ws_hello_ms;
    {
        /* The origins whose pages may call rpcs (GATEWAY_CORS_ORIGINS) may
         * open the WebSocket too; GATEWAY_WS_ORIGINS adds WebSocket-only ones
         * (or "*"). One list for the check. */
        const char *ws = cfg->ws_origins ? cfg->ws_origins : "";
        const char *cors = cfg->cors_origins ? cfg->cors_origins : "";
        size_t n = strlen(ws) + strlen(cors) + 2;

        l->origins = malloc(n);
        if (l->origins)
            snprintf(l->origins, n, "%s%s%s", ws, *ws && *cors ? "," : "", cors);
    }
    l->scratch = malloc(WS_SCRATCH);
    l->router = wamp_router_create(l, cfg, client);
    if (l->scratch == NULL || l->origins == NULL || l->router == NULL) {
        wamp_router_destroy(l->router);
        free(l->scratch);
        free(l->origins);
        free(l);
        return NRPC_ERR_NOMEM;
    }
    uv_timer_init(uv, &l->timer);
    uv_prepare_init(uv, &l->prep);
    l->timer.data = l->prep.data = l;
    l->handles_open = 2;
    uv_prepare_start(&l->prep, loop_on_prepare);
    /* A tick fine enough for the ping interval, at most a second. */
    tick = l->ping_ms > 0 ? l->ping_ms / 4 : 1000;
    if (l->hello_ms > 0 && l->hello_ms / 4 < tick)
        tick = l->hello_ms / 4;
    if (tick > 1000)
        tick = 1000;
    if (tick < 50)
        tick = 50;
    uv_timer_start(&l->timer, loop_on_timer, (uint64_t)tick, (uint64_t)tick);
    *out = l;
    return NRPC_OK;
}

void
gw_ws_quiesce(gw_ws *l)
{
    ws_conn *c;

    if (l == NULL || l->quiescing)
        return;
    l->quiescing = 1;
    for (c = l->conns; c; c = c->next) {
        if (c->state != CONN_OPEN)
            continue;
        /* No GOODBYE: see gw_ws_quiesce in ws.h. Clients reconnect. */
        ws_conn_close(c, WS_CLOSE_GOING_AWAY, "server going away; reconnect");
    }
    wamp_router_detach(l->router);
    loop_settle(l);
}

static void
ws_on_handle_closed(uv_handle_t *h)
{
    gw_ws *l = h->data;

    if (--l->handles_open > 0)
        return;
    wamp_router_destroy(l->router);
    free(l->scratch);
    free(l->origins);
    free(l);
}

void
gw_ws_stop(gw_ws *l)
{
    ws_conn *c;

    if (l == NULL)
        return;
    gw_ws_quiesce(l);
    for (c = l->conns; c; c = c->next)
        conn_kill(c);
    loop_settle(l);
    /* The sockets' poll handles are closing too; their close callbacks
     * hand each socket back to MHD and do not touch l. */
    uv_close((uv_handle_t *)&l->timer, ws_on_handle_closed);
    uv_close((uv_handle_t *)&l->prep, ws_on_handle_closed);
}

int
gw_ws_open_sockets(gw_ws *l)
{
    ws_conn *c;
    int n = 0;

    for (c = l ? l->conns : NULL; c; c = c->next)
        n += c->state != CONN_DEAD;
    return n;
}
