/* inbox.c: the one place that names this process's reply inboxes.
 *
 * Every reply to a natsrpc process travels on a subject under its inbox
 * prefix: "_INBOX" by default, or NATS_INBOX_PREFIX (e.g.
 * "_INBOX.gateway"). nats-server can then let each NATS user subscribe to
 * its own prefix only, so no process reads the replies meant for another.
 * The prefix reaches every inbox the process makes:
 *   - nats.c's own (natsConnection_Request, JetStream acknowledgments and
 *     consumers) through natsOptions_SetCustomInboxPrefix (nrpc__inbox_apply,
 *     from nrpc__nats_connect);
 *   - natsrpc's own (the client's shared inbox, a service's outgoing calls,
 *     the gateway's WAMP markers, the CLI) through nrpc_inbox_new.
 * natsInbox_Create ignores the option, so nothing in natsrpc calls it.
 *
 * The digits come from the kernel (getrandom), not from the id generator
 * of trace.c: a responder sees the inbox of every call it serves, and from
 * that generator's output it could tell the process's next inbox (a CLI
 * call it does not serve) and answer there first. An inbox is made once
 * per client, per outgoing-call table or per CLI call, so the syscall is
 * off every per-request path.
 *
 * A prefix must stay under "_INBOX": the gateway never forwards to an
 * "_INBOX" subject nor lets a WAMP client reach one (nrpc_subject_is_rpc,
 * NRPC_EVENT_PREFIX), and that guard covers a custom prefix only there. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INBOX_ROOT "_INBOX"

/* At most 40 bytes of s for messages, any byte but printable ASCII as '?',
 * "..." when cut: the value comes from the environment and may hold
 * anything. */
static void
shown(const char *s, char *out, size_t len)
{
    size_t i, o = 0;

    for (i = 0; s[i] && i < 40 && o + 2 < len; i++)
        out[o++] = ((unsigned char)s[i] < 32 || (unsigned char)s[i] >= 127) ? '?' : s[i];
    if (s[i] && o + 4 < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

int
nrpc_inbox_prefix_check(const char *prefix, char *why, size_t why_len)
{
    char text[64];
    size_t n, i, tok = 0;
    unsigned char c;

    if (why && why_len)
        why[0] = '\0';
    if (prefix == NULL || *prefix == '\0')
        return 0; /* unset: the default */
    shown(prefix, text, sizeof text);
    n = strlen(prefix);
    if (n > NRPC_INBOX_PREFIX_MAX) {
        if (why)
            snprintf(why, why_len,
                     "NATS_INBOX_PREFIX '%s' is %zu bytes long: at most %d", text, n,
                     NRPC_INBOX_PREFIX_MAX);
        return -1;
    }
    for (i = 0; i <= n; i++) {
        c = (unsigned char)prefix[i];
        if (c == '.' || c == '\0') {
            if (i == tok) {
                if (why)
                    snprintf(why, why_len, "NATS_INBOX_PREFIX '%s' has an empty token", text);
                return -1;
            }
            tok = i + 1;
            continue;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-')
            continue;
        if (why) {
            if (c > 32 && c < 127)
                snprintf(why, why_len,
                         "NATS_INBOX_PREFIX '%s' holds '%c': a prefix is dot-separated tokens "
                         "of letters, digits, '_' and '-' (no wildcards, spaces or '$')",
                         text, c);
            else
                snprintf(why, why_len,
                         "NATS_INBOX_PREFIX '%s' holds the byte 0x%02x: a prefix is "
                         "dot-separated tokens of letters, digits, '_' and '-' (no wildcards, "
                         "spaces or '$')",
                         text, c);
        }
        return -1;
    }
    if (strncmp(prefix, INBOX_ROOT, 6) != 0 || (prefix[6] != '\0' && prefix[6] != '.')) {
        if (why)
            snprintf(why, why_len,
                     "NATS_INBOX_PREFIX '%s' is not under _INBOX: use _INBOX or _INBOX.<name> "
                     "(e.g. _INBOX.gateway), where the gateway never forwards",
                     text);
        return -1;
    }
    return 0;
}

const char *
nrpc_inbox_prefix(void)
{
    const char *p = getenv("NATS_INBOX_PREFIX");

    if (p == NULL || *p == '\0')
        return INBOX_ROOT;
    return nrpc_inbox_prefix_check(p, NULL, 0) == 0 ? p : NULL;
}

/* n hex digits (n even, at most 64) from the kernel's generator. -1 when
 * it fails (it does not block once the system has booted). */
static int
random_hex(char *out, size_t n)
{
    unsigned char b[32];

    if (nrpc__random_secret(b, n / 2) != 0)
        return -1;
    nrpc__hex(b, n / 2, out);
    explicit_bzero(b, sizeof b);
    return 0;
}

nrpc_status
nrpc_inbox_new(char *buf, size_t len)
{
    const char *p = nrpc_inbox_prefix();
    size_t n;

    if (buf == NULL || len == 0)
        return NRPC_ERR_INVALID_ARG;
    buf[0] = '\0';
    if (p == NULL)
        return NRPC_ERR_INVALID_ARG;
    n = strlen(p);
    if (len < n + 1 + NRPC_INBOX_RANDOM + 1)
        return NRPC_ERR_INVALID_ARG;
    if (random_hex(buf + n + 1, NRPC_INBOX_RANDOM) != 0)
        return NRPC_ERR_SYSTEM;
    memcpy(buf, p, n);
    buf[n] = '.';
    buf[n + 1 + NRPC_INBOX_RANDOM] = '\0';
    return NRPC_OK;
}

int
nrpc__inbox_apply(natsOptions *o, char *err, size_t errlen)
{
    const char *p = getenv("NATS_INBOX_PREFIX");

    if (p == NULL || *p == '\0')
        return 0; /* nats.c's default is ours: "_INBOX" */
    if (nrpc_inbox_prefix_check(p, err, errlen) != 0)
        return -1;
    if (natsOptions_SetCustomInboxPrefix(o, p) != NATS_OK) {
        snprintf(err, errlen, "NATS_INBOX_PREFIX '%s': nats.c refused it", p);
        return -1;
    }
    return 0;
}
