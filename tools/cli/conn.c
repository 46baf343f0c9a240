/* conn.c: the NATS side of the natsrpc command-line client. */
#include "cli.h"
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* After the first reply of a gather, stop once replies pause this long. */
#define CLI_GATHER_STALL_MS 300

void
cli_err(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n;

    /* One write: nats.c's threads may log at the same moment, and a line
     * written in pieces would be cut in two by theirs. */
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof line - 2)
        n = (int)(sizeof line - 2);
    line[n] = '\n';
    line[n + 1] = '\0';
    fprintf(stderr, "natsrpc: %s", line);
}

/* A server gets this long to greet us (nats.c's default), or --timeout
 * when shorter. A NATS server answers within milliseconds when it is there. */
#define CLI_CONNECT_MS 2000

/* Connects through the framework (nrpc__nats_connect: the one URL list
 * parser and set of options), failing fast: a command-line tool reports an
 * unreachable or malformed server at once instead of retrying in the
 * background until its request times out. */
natsConnection *
cli_connect(const cli_opts *o)
{
    char reason[512] = "", shown[512];
    nrpc__conn_hooks fast = {.fail_fast_ms = o->timeout_ms < CLI_CONNECT_MS ? o->timeout_ms
                                                                            : CLI_CONNECT_MS,
                             .why = reason,
                             .why_len = sizeof reason};
    const char *url = nrpc__nats_url(o->server), *why;
    natsConnection *nc = NULL;
    natsStatus s = NATS_OK;
    nrpc_status st;

    if (o->server && *o->server == '\0') {
        cli_err("cannot connect to NATS: --server is empty");
        return NULL;
    }
    nrpc__url_redact(url, shown, sizeof shown);
    st = nrpc__nats_connect(&nc, url, "natsrpc-cli", &fast);
    if (st != NRPC_OK && reason[0]) { /* a setting, or the server's refusal */
        cli_err("cannot connect to NATS: %s", reason);
        return NULL;
    }
    if (st == NRPC_ERR_INVALID_ARG) {
        cli_err("cannot connect to NATS: '%s' names no server", shown);
        return NULL;
    }
    if (st != NRPC_OK) {
        why = nats_GetLastError(&s);
        if (why && why[0] == '(' && strstr(why, "): ")) /* "(conn.c:2088): " */
            why = strstr(why, "): ") + 3;
        cli_err("cannot connect to NATS at %s: %s", shown,
                s != NATS_OK && why && *why ? why : nrpc_status_text(st));
        return NULL;
    }
    return nc;
}

const char *
cli_not_permitted(natsConnection *nc)
{
    const char *text = NULL;

    /* nats-server's -ERR comes before the PONG of a flush, so after one
     * the refusal is the connection's last error. */
    if (natsConnection_GetLastError(nc, &text) != NATS_NOT_PERMITTED)
        return NULL;
    return text && *text ? text : "Not Permitted";
}

void
cli_close(natsConnection *nc)
{
    nrpc__nats_close(nc);
}

/* Why a call was answered 503 because its connection went. */
#define CLI_LOST                                                                                   \
    "NATS connection lost while the request was in flight; the reply may have been lost (the "  \
    "call may have run)"

/* One request on an inbox of its own, so that heartbeats (natsrpc.h,
 * "Progress heartbeats") can be told from the reply: asked for when the
 * timeout is long enough, skipped when they come, and watched from the
 * first one on. */
int
cli_request(natsConnection *nc, const cli_opts *o, const char *subject, const char *data,
            size_t len, natsMsg **reply)
{
    natsSubscription *sub = NULL;
    char inbox[NRPC_INBOX_SIZE];
    natsMsg *msg = NULL;
    int64_t hb_ms = nrpc__hb_interval(o->timeout_ms), deadline, watch = INT64_MAX;
    char tmo[24], hb[24];
    natsStatus s;

    *reply = NULL;
    snprintf(tmo, sizeof tmo, "%lld", (long long)o->timeout_ms);
    snprintf(hb, sizeof hb, "%lld", (long long)hb_ms);
    /* cli_connect has checked NATS_INBOX_PREFIX. */
    s = nrpc_inbox_new(inbox, sizeof inbox) == NRPC_OK ? NATS_OK : NATS_INVALID_ARG;
    if (s == NATS_OK)
        s = natsConnection_SubscribeSync(&sub, nc, inbox);
    if (s == NATS_OK)
        s = natsMsg_Create(&msg, subject, inbox, data, (int)len);
    /* The rpc learns how long we wait, as from the gateway. */
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, NRPC_HDR_TIMEOUT, tmo);
    if (s == NATS_OK && hb_ms > 0)
        s = natsMsgHeader_Set(msg, NRPC_HDR_HEARTBEAT_MS, hb);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(nc, msg);
    natsMsg_Destroy(msg);
    deadline = nrpc_now_ms() + o->timeout_ms;
    while (s == NATS_OK) {
        int64_t now = nrpc_now_ms(), until = watch < deadline ? watch : deadline;
        natsMsg *m = NULL;

        s = until > now ? natsSubscription_NextMsg(&m, sub, until - now) : NATS_TIMEOUT;
        if (s == NATS_OK && nrpc__is_heartbeat(m)) {
            natsMsg_Destroy(m);
            if (hb_ms > 0)
                watch = nrpc_now_ms() + nrpc__hb_limit(hb_ms);
            continue;
        }
        if (s == NATS_OK)
            *reply = m;
        now = nrpc_now_ms();
        if (s == NATS_TIMEOUT && now < deadline && now < watch) {
            s = NATS_OK; /* woke a little early: wait on */
            continue;
        }
        if (s == NATS_TIMEOUT && now < deadline) {
            char lost[NRPC_MAX_SUBJECT + 128];
            nrpc__hb_lost_message(lost, sizeof lost, subject, nrpc__hb_limit(hb_ms));
            cli_err("%s: error 503 unavailable: %s", subject, lost);
            natsSubscription_Destroy(sub);
            return CLI_EXIT_RPC;
        }
        break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    if (s == NATS_OK)
        return CLI_EXIT_OK;
    if (s == NATS_NO_RESPONDERS)
        cli_err("no such rpc: nobody listens on %s", subject);
    else if (s == NATS_TIMEOUT)
        cli_err("no reply from %s within %g s", subject, (double)o->timeout_ms / 1000.0);
    else if (s == NATS_INVALID_SUBJECT || s == NATS_INVALID_ARG)
        cli_err("not a valid subject: '%s'", subject);
    else if (s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED)
        /* The connection (one try, no reconnect) dropped while we waited:
         * the answer the gateway and outcalls give, at once. */
        cli_err("%s: error 503 unavailable: " CLI_LOST, subject);
    else {
        cli_err("request on %s failed: %s", subject, natsStatus_GetText(s));
        return CLI_EXIT_CONN;
    }
    return CLI_EXIT_RPC;
}

int
cli_gather(natsConnection *nc, const cli_opts *o, const char *subject, json_t **out)
{
    natsSubscription *sub = NULL;
    char inbox[NRPC_INBOX_SIZE];
    int64_t hard, deadline;
    natsStatus s;

    *out = json_array();
    s = nrpc_inbox_new(inbox, sizeof inbox) == NRPC_OK ? NATS_OK : NATS_INVALID_ARG;
    if (s == NATS_OK)
        s = natsConnection_SubscribeSync(&sub, nc, inbox);
    if (s == NATS_OK)
        s = natsConnection_PublishRequest(nc, subject, inbox, NULL, 0);
    if (s != NATS_OK) {
        cli_err("request on %s failed: %s", subject, natsStatus_GetText(s));
        natsSubscription_Destroy(sub);
        return s == NATS_INVALID_SUBJECT ? CLI_EXIT_USAGE : CLI_EXIT_CONN;
    }
    /* Up to the timeout for the first reply; then until they pause. */
    hard = deadline = nrpc_now_ms() + o->timeout_ms;
    for (;;) {
        int64_t left = deadline - nrpc_now_ms();
        natsMsg *m = NULL;
        json_t *v;

        if (left <= 0)
            break;
        if (natsSubscription_NextMsg(&m, sub, left) != NATS_OK)
            break;
        if (natsMsg_IsNoResponders(m)) {
            natsMsg_Destroy(m);
            break; /* nobody listens at all */
        }
        v = json_loadb(natsMsg_GetData(m) ? natsMsg_GetData(m) : "",
                       (size_t)natsMsg_GetDataLength(m), 0, NULL);
        if (v)
            json_array_append_new(*out, v);
        natsMsg_Destroy(m);
        deadline = nrpc_now_ms() + CLI_GATHER_STALL_MS;
        if (deadline > hard)
            deadline = hard;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return CLI_EXIT_OK;
}

void
cli_print_json(json_t *v, int indent)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | (indent ? JSON_INDENT(2) : JSON_COMPACT));

    if (text) {
        puts(text);
        free(text);
    }
}
