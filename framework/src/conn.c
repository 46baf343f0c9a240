/* conn.c: the one way natsrpc processes connect to NATS. */
#include "internal.h"

/* The adapter's functions are defined in its header: this is the one file
 * that includes it. */
#include <nats/adapters/libuv.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* nats_Open's lockSpinCount: block at once on a busy nats.c lock. */
#define NRPC_NATS_LOCK_SPIN 0

/* One per connection, registered by its natsConnection so that
 * nrpc__nats_close can tell on_closed that the close is ours. Freed by
 * whichever of on_closed and nrpc__nats_close comes last; while
 * nrpc__nats_connect is still under way (connecting), by neither: a
 * connection that is retrying in the background can be closed before
 * natsConnection_Connect has even returned it.
 *
 * The owner's hooks run under reg_mu and only while the close is not ours:
 * once nrpc__nats_close has set `ours` no hook runs any more, and one that
 * was running has returned, so the owner may free what its closure points
 * to. */
typedef struct conn_state {
    struct conn_state *next;
    natsConnection *nc;
    nrpc__conn_hooks hooks;
    int ours;       /* nrpc__nats_close has started (or connect failed): not an outage */
    int closed;     /* on_closed has run */
    int connecting; /* nrpc__nats_connect has not registered it yet */
} conn_state;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static conn_state *reg;
static atomic_uint_fast64_t fatal_closes;

static void
reg_unlink(conn_state *h)
{
    conn_state **pp;
    for (pp = &reg; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            return;
        }
}

uint64_t
nrpc__nats_fatal_closes(void)
{
    return atomic_load(&fatal_closes);
}

static void
conn_url(natsConnection *nc, char *buf, size_t len)
{
    char raw[256];

    if (natsConnection_GetConnectedUrl(nc, raw, sizeof raw) != NATS_OK || raw[0] == '\0')
        snprintf(buf, len, "(none)");
    else
        nrpc__url_redact(raw, buf, len);
}

/* Runs one of the owner's hooks unless nrpc__nats_close has started.
 * h is alive: nats.c runs connection events in order on one thread, and h
 * is freed only after on_closed, the last of them. */
static void
hook_run(conn_state *h, void (*hook)(void *))
{
    pthread_mutex_lock(&reg_mu);
    if (!h->ours && hook)
        hook(h->hooks.closure);
    pthread_mutex_unlock(&reg_mu);
}

static void
on_disconnected(natsConnection *nc, void *closure)
{
    conn_state *h = closure;

    /* Requests in flight on the lost connection fail now, however fast
     * the reconnect: their replies may be gone (see the hook). */
    hook_run(h, h->hooks.disconnected);
    if (h->hooks.fail_fast_ms > 0 || natsConnection_IsClosed(nc))
        return; /* no reconnect to announce; on_closed says what happened */
    nrpc_log(NRPC_LOG_WARN, "NATS disconnected; reconnecting with backoff");
}

static void
hook_connected(conn_state *h)
{
    hook_run(h, h->hooks.connected);
}

static void
on_reconnected(natsConnection *nc, void *closure)
{
    char url[256];

    conn_url(nc, url, sizeof url);
    nrpc_log(NRPC_LOG_INFO, "NATS reconnected to %s", url);
    hook_connected(closure);
}

static void
on_connected(natsConnection *nc, void *closure)
{
    char url[256];

    conn_url(nc, url, sizeof url);
    nrpc_log(NRPC_LOG_INFO, "NATS connected to %s", url);
    hook_connected(closure);
}

static void
on_closed(natsConnection *nc, void *closure)
{
    conn_state *h = closure;
    int ours, last;

    const char *err = NULL;
    natsStatus s = natsConnection_GetLastError(nc, &err);

    pthread_mutex_lock(&reg_mu);
    ours = h->ours;
    h->closed = 1;
    /* While connecting, nrpc__nats_connect decides (it needs h after us). */
    last = ours && !h->connecting;
    if (last)
        reg_unlink(h);
    /* A one-command tool (fail_fast_ms) sees a lost connection in its next
     * call, and has nothing to rebuild. */
    if (!ours && h->hooks.fail_fast_ms <= 0) {
        atomic_fetch_add(&fatal_closes, 1);
        nrpc_log(NRPC_LOG_ERROR, "NATS connection closed for good (%s%s%s); building a new one",
                 natsStatus_GetText(s), err && *err ? ": " : "", err ? err : "");
        if (h->hooks.closed)
            h->hooks.closed(h->hooks.closure);
    }
    pthread_mutex_unlock(&reg_mu);
    if (last)
        free(h);
}

void
nrpc__nats_close(natsConnection *nc)
{
    conn_state *h;
    int fired = 0;

    if (nc == NULL)
        return;
    pthread_mutex_lock(&reg_mu);
    for (h = reg; h && h->nc != nc; h = h->next)
        ;
    if (h) {
        h->ours = 1;
        fired = h->closed;
        if (fired)
            reg_unlink(h);
    }
    pthread_mutex_unlock(&reg_mu);
    /* Not closed yet: on_closed will see ours and free h. */
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
    if (h && fired)
        free(h);
}

static void
on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    conn_state *h = closure;
    const char *last = NULL;
    char text[256];

    if (err != NATS_NOT_PERMITTED) {
        nrpc_log(NRPC_LOG_WARN, "NATS async error: %s", natsStatus_GetText(err));
        return;
    }
    /* nats.c 3.4 keeps the server's text ("Permissions Violation for
     * Subscription to \"x\"") only as the connection's last error. */
    natsConnection_GetLastError(nc, &last);
    snprintf(text, sizeof text, "%s", last && *last ? last : natsStatus_GetText(err));
    nrpc_log(NRPC_LOG_ERROR, "NATS refused: %s (the permissions of this process's NATS user "
                             "do not allow it)",
             text);
    pthread_mutex_lock(&reg_mu);
    if (!h->ours && h->hooks.not_permitted)
        h->hooks.not_permitted(h->hooks.closure, text);
    pthread_mutex_unlock(&reg_mu);
}

/* The server answered and refused our credentials or our TLS settings:
 * trying again with the same settings cannot help. Anything else (nobody
 * answered, a -ERR such as too many connections) is worth waiting out. */
static int
refused(natsStatus s)
{
    return s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED || s == NATS_SSL_ERROR ||
           s == NATS_SECURE_CONNECTION_REQUIRED || s == NATS_SECURE_CONNECTION_WANTED;
}

/* nrpc_backoff_ms from 100 ms to 2 s. Attempts are logged now and then so
 * an outage is visible without flooding the log. */
static int64_t
reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    int64_t d = nrpc_backoff_ms(attempts, 100, 2000);

    if (attempts == 1 || attempts % 30 == 0)
        nrpc_log(NRPC_LOG_INFO, "NATS reconnect attempt %d, next in %lld ms", attempts,
                 (long long)d);
    return d;
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

const char *
nrpc__nats_url(const char *url)
{
    if (url == NULL || *url == '\0')
        url = getenv("NATS_URL");
    if (url == NULL || *url == '\0')
        url = NRPC_DEFAULT_NATS_URL;
    return url;
}

nrpc_status
nrpc__nats_connect(natsConnection **out, const char *url, const char *name,
                   const nrpc__conn_hooks *hooks)
{
    natsOptions *o = NULL;
    natsStatus s;
    conn_state *h;
    const char *urls[32];
    char *copy, shown[512], what[512], err[1200];
    int n, last = 0, tried = 0, bg = 0, fast = hooks && hooks->fail_fast_ms > 0;

    url = nrpc__nats_url(url);
    nrpc__url_redact(url, shown, sizeof shown);
    copy = strdup(url);
    h = calloc(1, sizeof *h);
    if (copy == NULL || h == NULL) {
        free(copy);
        free(h);
        return NRPC_ERR_NOMEM;
    }
    if (hooks)
        h->hooks = *hooks;
    h->connecting = 1;
    n = split_urls(copy, urls, 32);
    if (n == 0) {
        free(copy);
        free(h);
        if (!fast)
            nrpc_log(NRPC_LOG_ERROR, "NATS_URL names no server: '%s'", shown);
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
    if (s == NATS_OK && (nrpc__nats_creds_apply(o, url, what, sizeof what, err, sizeof err) != 0 ||
                         nrpc__inbox_apply(o, err, sizeof err) != 0)) {
        /* A setting that cannot work fails the process at start, loudly,
         * even for a tool that logs nothing else. */
        if (hooks && hooks->why)
            snprintf(hooks->why, hooks->why_len, "%s", err);
        else
            nrpc_log(NRPC_LOG_ERROR, "%s", err);
        natsOptions_Destroy(o);
        free(copy);
        free(h);
        return NRPC_ERR_INVALID_ARG;
    }
    if (s == NATS_OK && !fast)
        nrpc_log(NRPC_LOG_INFO, "NATS at %s with %s, replies under %s.>", shown, what,
                 nrpc_inbox_prefix());
    if (s == NATS_OK && name)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(o, false);
    /* Every publish is written at once: without this nats.c waits ~1 ms for
     * its flusher thread, which would add a millisecond to every hop. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK && fast) {
        /* One try of each server within the caller's time: a tool that runs
         * one command says at once that NATS is not there. */
        s = natsOptions_SetTimeout(o, h->hooks.fail_fast_ms);
        if (s == NATS_OK)
            s = natsOptions_SetAllowReconnect(o, false);
    } else if (s == NATS_OK) {
        s = natsOptions_SetMaxReconnect(o, -1);
        if (s == NATS_OK)
            s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, NULL);
        if (s == NATS_OK && h->hooks.loop) {
            /* The first attach of the adapter must happen on the loop's
             * thread, which is this one (see internal.h). */
            natsLibuv_Init();
            natsLibuv_SetThreadLocalLoop(h->hooks.loop);
            s = natsOptions_SetEventLoop(o, h->hooks.loop, natsLibuv_Attach, natsLibuv_Read,
                                         natsLibuv_Write, natsLibuv_Detach);
        }
    }
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, h);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, h);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, h);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, h);
    /* nats.c's own blocking requests (natsConnection_Request*) fail at
     * once when the link drops, instead of waiting for their timeout.
     * natsrpc's asynchronous requests (client.c, outcall.c) do the same
     * from the disconnected hook. */
    if (s == NATS_OK)
        s = natsOptions_SetFailRequestsOnDisconnect(o, true);
    /* All subscriptions of the process share one delivery thread: a fixed
     * thread count however many rpcs a service declares. */
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(o, true);
    if (s == NATS_OK) {
        tried = 1;
        /* A first try in the foreground tells a server that refuses us
         * (credentials, TLS) from one that is not there yet: the first
         * fails the process at start, the second is waited for. A failed
         * connect without a background retry runs no callback. */
        s = natsConnection_Connect(out, o);
        if (s != NATS_OK && !refused(s) && !fast && !h->hooks.loop) {
            s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, h);
            if (s == NATS_OK) {
                bg = 1;
                s = natsConnection_Connect(out, o);
            }
        }
        if (s == NATS_NOT_YET_CONNECTED) {
            nrpc_log(NRPC_LOG_WARN, "NATS at %s not reachable yet; retrying in the background",
                     shown);
            s = NATS_OK;
        } else if (s == NATS_OK && !fast) {
            char cur[256];
            conn_url(*out, cur, sizeof cur);
            nrpc_log(NRPC_LOG_INFO, "NATS connected to %s", cur);
        }
    }
    natsOptions_Destroy(o);
    free(copy);
    pthread_mutex_lock(&reg_mu);
    h->connecting = 0;
    if (s == NATS_OK) {
        /* Registered even when on_closed has run already: the owner gets a
         * closed connection (its closed hook has run) and nrpc__nats_close
         * frees h. */
        h->nc = *out;
        h->next = reg;
        reg = h;
    } else {
        /* The owner never gets the connection: no hook may run for it, and
         * h goes with on_closed, now if that has run, else when it runs.
         * Without a background retry (loop mode, a refusal) a failed
         * connect runs no callback at all: h goes now. */
        h->ours = 1;
        last = h->closed || !bg;
    }
    pthread_mutex_unlock(&reg_mu);
    if (s != NATS_OK && refused(s)) {
        const char *why = nats_GetLastError(NULL);
        if (why && why[0] == '(' && strstr(why, "): ")) /* "(conn.c:1905): " */
            why = strstr(why, "): ") + 3;
        snprintf(err, sizeof err, "NATS at %.300s refused the connection (%.400s): %.300s", shown,
                 what, why && *why ? why : natsStatus_GetText(s));
        if (hooks && hooks->why)
            snprintf(hooks->why, hooks->why_len, "%s", err);
    }
    if (s != NATS_OK) {
        if (!fast && refused(s))
            nrpc_log(NRPC_LOG_ERROR, "%s", err);
        else if (!fast)
            nrpc_log(NRPC_LOG_ERROR, "NATS connect to %s failed: %s", shown,
                     natsStatus_GetText(s));
        /* Before the connect, or when failing fast, no callback can run and
         * h is ours to free; else on_closed frees it if it has not yet. */
        if (last || !tried || fast)
            free(h);
        return refused(s) ? NRPC_ERR_REFUSED : NRPC_ERR_NATS;
    }
    return NRPC_OK;
}
