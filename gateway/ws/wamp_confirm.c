/*
 * wamp_confirm.c: tells the router when nats-server has every subscription
 * the loop's client sent so far, without blocking the loop.
 *
 * A WAMP client takes SUBSCRIBED as "events published from now on reach
 * me", and a page often publishes, or has another gateway publish, right
 * after it. A NATS SUB is only a line in the client's output buffer until
 * the server has read it, so SUBSCRIBED must wait for the server. nats.c's
 * natsConnection_FlushTimeout waits for a PONG on a condition variable, and
 * on a loop-mode client the PONG is read by the very thread that would be
 * waiting: it cannot be used here.
 *
 * The same guarantee, asynchronously: the server handles one connection's
 * protocol lines in order, so once a message the client published after its
 * SUBs comes back to it, every one of those SUBs is in the server's
 * interest graph. (The server has also queued them to the other nodes of a
 * cluster, but nothing tells when those have read them: a publish on
 * another node a moment after SUBSCRIBED can still miss, see the README.) The
 * router asks for a ticket after each SUB; the next time the loop is about
 * to poll (wamp_confirm_prepare, from ws.c's prepare handle) one marker
 * carrying the highest ticket so far is published to a private inbox
 * subject this client subscribes to, so every SUB of a loop turn shares one
 * round trip. A marker that comes back with sequence k confirms every
 * ticket up to k. A marker lost with the connection (nats.c does not keep a
 * publish across a disconnect here: nrpc_client_publish refuses while the
 * link is down) is sent again by wamp_confirm_tick after
 * WAMP_CONFIRM_RETRY_MS; a later marker confirms the earlier tickets too,
 * and the SUBs themselves are sent again by nats.c on the new connection
 * before anything else.
 *
 * Everything runs on the loop's thread.
 */
#include "ws.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A marker not back after this long is published again (a new sequence). */
#define WAMP_CONFIRM_RETRY_MS 1000

struct wamp_confirm {
    nrpc_client *client; /* NULL once detached */
    nrpc_subscription *sub;
    char subject[NRPC_INBOX_SIZE]; /* an inbox of this process (nrpc_inbox_new), private to this loop */
    uint64_t wanted;    /* highest ticket handed out */
    uint64_t published; /* highest marker sequence published */
    uint64_t confirmed; /* highest marker sequence back from the server */
    int64_t published_at_ms;
    void (*on_confirmed)(void *arg, uint64_t upto);
    void *arg;
};

/* A marker back from the server (the loop's client, after a poll). */
static void
confirm_on_marker(const nrpc_message *msg, void *closure)
{
    wamp_confirm *cf = closure;
    uint64_t seq = wamp_marker_parse(msg->data, msg->len);

    /* Only our own sequences count: the subject is private, but anything on
     * NATS could publish to it, and a number past what we published would
     * confirm SUBs the server may not have read yet. */
    if (seq == 0 || seq > cf->published || seq <= cf->confirmed)
        return;
    cf->confirmed = seq;
    cf->on_confirmed(cf->arg, cf->confirmed);
}

wamp_confirm *
wamp_confirm_create(nrpc_client *client, void (*on_confirmed)(void *arg, uint64_t upto), void *arg)
{
    wamp_confirm *cf = calloc(1, sizeof *cf);

    if (cf == NULL)
        return NULL;
    /* Under NATS_INBOX_PREFIX, which the loop's client has checked. */
    if (nrpc_inbox_new(cf->subject, sizeof cf->subject) != NRPC_OK) {
        free(cf);
        return NULL;
    }
    cf->client = client;
    cf->on_confirmed = on_confirmed;
    cf->arg = arg;
    return cf;
}

/* Publishes marker number published + 1. Returns 0, or -1 when NATS is not
 * connected now (the tick tries again). */
static int
confirm_publish(wamp_confirm *cf)
{
    char text[24];
    uint64_t seq = cf->published + 1;

    if (cf->client == NULL || cf->sub == NULL)
        return -1;
    snprintf(text, sizeof text, "%" PRIu64, seq);
    if (nrpc_client_publish(cf->client, cf->subject, text, strlen(text), NULL) != NRPC_OK)
        return -1;
    cf->published = seq;
    if (cf->wanted < seq)
        cf->wanted = seq;
    cf->published_at_ms = nrpc_now_ms();
    return 0;
}

uint64_t
wamp_confirm_ticket(wamp_confirm *cf)
{
    if (cf->client == NULL)
        return 0;
    /* The marker subscription is made on first use: a gateway nobody
     * subscribes through holds none. Its SUB precedes the marker too. */
    if (cf->sub == NULL &&
        nrpc_client_subscribe(cf->client, cf->subject, confirm_on_marker, cf, &cf->sub) != NRPC_OK)
        return 0;
    cf->wanted = cf->published + 1;
    return cf->wanted;
}

void
wamp_confirm_prepare(wamp_confirm *cf)
{
    if (cf != NULL && cf->wanted > cf->published)
        confirm_publish(cf);
}

void
wamp_confirm_tick(wamp_confirm *cf, int64_t now_ms)
{
    if (cf == NULL || cf->wanted <= cf->confirmed)
        return;
    if (cf->wanted > cf->published || now_ms - cf->published_at_ms >= WAMP_CONFIRM_RETRY_MS)
        confirm_publish(cf);
}

void
wamp_confirm_detach(wamp_confirm *cf)
{
    if (cf == NULL)
        return;
    nrpc_client_unsubscribe(cf->sub);
    cf->sub = NULL;
    cf->client = NULL;
}

void
wamp_confirm_free(wamp_confirm *cf)
{
    wamp_confirm_detach(cf);
    free(cf);
}
