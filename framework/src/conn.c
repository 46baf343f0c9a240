/* conn.c: the one way natsrpc processes connect to NATS. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* nats_Open's lockSpinCount: block at once on a busy nats.c lock. */
#define NRPC_NATS_LOCK_SPIN 0

/* Lives as long as the connection: natsOptions keep only the pointer. */
typedef struct {
    void (*connected_cb)(void *closure);
    void *closure;
} conn_hooks;

static void
conn_url(natsConnection *nc, char *buf, size_t len)
{
    if (natsConnection_GetConnectedUrl(nc, buf, len) != NATS_OK || buf[0] == '\0')
        snprintf(buf, len, "(none)");
}

static void
on_disconnected(natsConnection *nc, void *closure)
{
    if (natsConnection_IsClosed(nc))
        return; /* our own close at exit, not an outage */
    nrpc_log(NRPC_LOG_WARN, "NATS disconnected; reconnecting with backoff");
}

static void
on_reconnected(natsConnection *nc, void *closure)
{
    conn_hooks *h = closure;
    char url[256];

    conn_url(nc, url, sizeof url);
    nrpc_log(NRPC_LOG_INFO, "NATS reconnected to %s", url);
    if (h->connected_cb)
        h->connected_cb(h->closure);
}

static void
on_connected(natsConnection *nc, void *closure)
{
    conn_hooks *h = closure;
    char url[256];

    conn_url(nc, url, sizeof url);
    nrpc_log(NRPC_LOG_INFO, "NATS connected to %s", url);
    if (h->connected_cb)
        h->connected_cb(h->closure);
}

static void
on_closed(natsConnection *nc, void *closure)
{
    free(closure); /* the hooks: nothing calls back after close */
}

static void
on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    nrpc_log(NRPC_LOG_WARN, "NATS async error: %s", natsStatus_GetText(err));
}

/* 100 ms, 200 ms, ... capped at 2 s, plus up to 100 ms of jitter so that
 * replicas do not reconnect in lockstep. Attempts are logged now and then so
 * an outage is visible without flooding the log. */
static int64_t
reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    int64_t d = 100;
    int i;

    for (i = 1; i < attempts && d < 2000; i++)
        d *= 2;
    if (d > 2000)
        d = 2000;
    if (attempts == 1 || attempts % 30 == 0)
        nrpc_log(NRPC_LOG_INFO, "NATS reconnect attempt %d, next in %lld ms", attempts,
                 (long long)d);
    return d + rand() % 100;
}

/* Splits "a,b,c" into servers (trimmed, empty items skipped). Returns the
 * count; urls point into the copy buf. */
static int
split_urls(char *buf, const char **urls, int max)
{
    int n = 0;
    char *save = NULL, *tok;

    for (tok = strtok_r(buf, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t l = strlen(tok);
        while (l > 0 && (tok[l - 1] == ' ' || tok[l - 1] == '\t'))
            tok[--l] = '\0';
        if (*tok)
            urls[n++] = tok;
    }
    return n;
}

nrpc_status
nrpc__nats_connect(natsConnection **out, const char *url, const char *name,
                   void (*connected_cb)(void *closure), void *closure)
{
    natsOptions *o = NULL;
    natsStatus s;
    conn_hooks *h;
    const char *urls[32];
    char *copy;
    int n;

    if (url == NULL || *url == '\0')
        url = getenv("NATS_URL");
    if (url == NULL || *url == '\0')
        url = NRPC_DEFAULT_NATS_URL;
    copy = strdup(url);
    h = calloc(1, sizeof *h);
    if (copy == NULL || h == NULL) {
        free(copy);
        free(h);
        return NRPC_ERR_NOMEM;
    }
    h->connected_cb = connected_cb;
    h->closure = closure;
    n = split_urls(copy, urls, 32);
    if (n == 0) {
        free(copy);
        free(h);
        nrpc_log(NRPC_LOG_ERROR, "NATS_URL names no server: '%s'", url);
        return NRPC_ERR_INVALID_ARG;
    }

    /* nats.c spins up to 2000 times on a busy lock of its own before
     * sleeping; with few cores that spinning only burns the CPU the lock
     * holder needs. Takes effect only if this is the library's first use
     * in the process (otherwise a no-op). */
    nats_Open(NRPC_NATS_LOCK_SPIN);
    s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, urls, n);
    if (s == NATS_OK && name)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(o, false);
    /* Every publish is written at once: without this nats.c waits ~1 ms for
     * its flusher thread, which would add a millisecond to every hop. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, h);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, h);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, h);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, h);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, h);
    /* Pending requests fail at once when the link drops, instead of waiting
     * for their timeout. */
    if (s == NATS_OK)
        s = natsOptions_SetFailRequestsOnDisconnect(o, true);
    /* All subscriptions of the process share one delivery thread: a fixed
     * thread count however many rpcs a service declares. */
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(o, true);
    if (s == NATS_OK) {
        s = natsConnection_Connect(out, o);
        if (s == NATS_NOT_YET_CONNECTED) {
            nrpc_log(NRPC_LOG_WARN, "NATS at %s not reachable yet; retrying in the background",
                     url);
            s = NATS_OK;
        } else if (s == NATS_OK) {
            char cur[256];
            conn_url(*out, cur, sizeof cur);
            nrpc_log(NRPC_LOG_INFO, "NATS connected to %s", cur);
        }
    }
    natsOptions_Destroy(o);
    free(copy);
    if (s != NATS_OK) {
        nrpc_log(NRPC_LOG_ERROR, "NATS connect to %s failed: %s", url, natsStatus_GetText(s));
        free(h);
        return NRPC_ERR_NATS;
    }
    return NRPC_OK;
}
