/*
 * internal.h: private declarations shared by the files of framework/src. Nothing here
 * is part of the public API (natsrpc.h); names use the nrpc__ prefix.
 */
#ifndef NRPC_INTERNAL_H
#define NRPC_INTERNAL_H

#include "natsrpc.h"

#include <nats/nats.h>

/* reply_token.c: sealed reply tokens. A caller's reply subject ends in
 * the number of its call sealed with a key of its own (AES-128, 32 hex
 * digits), so a reply can only come from whoever got the request: any
 * service may publish on a caller's inbox (to answer), but cannot make the
 * token of a call it never saw. */
#include <nettle/aes.h>
#define NRPC__SEALED_LEN 32
typedef struct {
    struct aes128_ctx enc, dec;
} nrpc__seal;
/* A new random key. -1 when the system has no randomness to give. */
int nrpc__seal_init(nrpc__seal *s);
/* n bytes from the kernel's generator, for what must not be guessed (the
 * seal's key, inboxes); trace.c. -1 when getrandom fails. */
int nrpc__random_secret(void *buf, size_t n);
/* The token of call number n, 32 lowercase hex digits and a NUL. */
void nrpc__seal_token(const nrpc__seal *s, uint64_t n, char out[NRPC__SEALED_LEN + 1]);
/* The call number a token (len bytes) stands for: 0, or -1 when s did not
 * seal it. */
int nrpc__seal_open(const nrpc__seal *s, const char *text, size_t len, uint64_t *n);

/* Default NATS server when neither the caller nor NATS_URL names one. */
#define NRPC_DEFAULT_NATS_URL "nats://127.0.0.1:4222"

/* What a connection's owner hears about it, and how it connects. The two
 * callbacks run on a nats.c thread, under a lock of conn.c: they must not
 * block, nor call nrpc__nats_connect or nrpc__nats_close. Once
 * nrpc__nats_close(nc) has returned, neither runs for nc any more, so the
 * owner may free their closure. */
typedef struct {
    /* Each time the connection is (re)established. */
    void (*connected)(void *closure);
    /* Each time the connection is lost (nats.c starts reconnecting, or
     * closes). Whatever was published on it and still waits for a reply
     * may never get one: the server that held the reply inbox's interest
     * is gone, and a reply published before nats.c subscribes the inbox
     * again elsewhere is dropped by the cluster. nats.c runs this before
     * the reconnected callback of the same outage, but possibly after the
     * new connection is already up. */
    void (*disconnected)(void *closure);
    /* The connection ended CLOSED by itself: nats.c gives up for good on
     * some server errors (a protocol line over the server's limit, an
     * authorization failure). It is logged here; the owner builds a new
     * connection (nrpc__nats_connect again) and retires this one with
     * nrpc__nats_close. Never called for a close of nrpc__nats_close. */
    void (*closed)(void *closure);
    /* The server refused something of ours for want of permission (text:
     * its words, e.g. Permissions Violation for Subscription to "a.b"),
     * already logged. Runs on a nats.c thread, under the same lock. */
    void (*not_permitted)(void *closure, const char *text);
    void *closure;
    /* > 0: fail fast, for a tool that runs one command (the natsrpc CLI).
     * Each server gets this many ms to answer, nothing retries in the
     * background, a connection that drops is closed rather than rebuilt,
     * and nothing is logged: the caller reports the NRPC_ERR_NATS it gets,
     * with nats_GetLastError for the reason. */
    int64_t fail_fast_ms;
    /* Not a hook: a uv_loop_t * whose thread calls nrpc__nats_connect and
     * runs the loop. nats.c then reads and writes the socket on that loop
     * through its libuv adapter instead of its reader thread; the owner
     * drains synchronous subscriptions there (client_loop.c). nats.c cannot
     * retry a first connection in the background then: when no server
     * answers, nrpc__nats_connect fails and the owner tries again. NULL:
     * nats.c's own threads. */
    void *loop;
    /* Optional, for a caller that logs itself (fail_fast_ms): filled with
     * why nrpc__nats_connect failed when the reason is a setting (see
     * nrpc__nats_creds_apply) or the server's refusal. */
    char *why;
    size_t why_len;
} nrpc__conn_hooks;

/* The servers a connection uses: url when it is not NULL or empty, else
 * $NATS_URL when set and not empty, else NRPC_DEFAULT_NATS_URL. Borrowed. */
const char *nrpc__nats_url(const char *url);

/*
 * Connects to NATS the way every natsrpc process does: url (nrpc__nats_url
 * picks it; a comma-separated list is allowed), publishes written at once
 * (no 1 ms flusher delay), reconnects forever with nrpc_backoff_ms and logs
 * every disconnect, reconnect and close. When no server answers at start,
 * it keeps retrying in the background and returns NRPC_OK with a connection
 * that is not connected yet (unless hooks->fail_fast_ms says otherwise).
 * *nc is new: nrpc__nats_close. hooks may be NULL; it is copied.
 */
nrpc_status nrpc__nats_connect(natsConnection **nc, const char *url, const char *name,
                               const nrpc__conn_hooks *hooks);

/* Applies the NATS credentials and TLS settings of the environment to o
 * (nats_creds.c): NATS_USER + NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED (a
 * file holding a user seed), NATS_CREDS (a .creds file), at most one of
 * them; NATS_CA, NATS_CERT + NATS_KEY and NATS_TLS_HOSTNAME for TLS. url is
 * the server list (credentials in it conflict with the variables). Returns
 * 0 with what describing the settings without a secret ("user 'gw'
 * (NATS_USER, NATS_PASSWORD), TLS with the CA ..."), or -1 with err naming
 * the variable at fault. */
int nrpc__nats_creds_apply(natsOptions *o, const char *url, char *what, size_t whatlen,
                           char *err, size_t errlen);

/* Applies NATS_INBOX_PREFIX (inbox.c) to o, so nats.c's own inboxes (its
 * requests, JetStream) use it too. Returns 0 (unset, or a valid prefix) or
 * -1 with err saying what is wrong with it. */
int nrpc__inbox_apply(natsOptions *o, char *err, size_t errlen);

/* Copies a server list for logs, with the user information of each URL
 * (user:secret in nats://user:secret@host:4222) replaced by three asterisks.
 * Always NUL-terminates out. */
void nrpc__url_redact(const char *url, char *out, size_t len);

/* Closes nc on purpose (the closed hook does not run) and destroys it.
 * NULL-safe. */
void nrpc__nats_close(natsConnection *nc);

/* Times any connection of this process ended CLOSED by itself. */
uint64_t nrpc__nats_fatal_closes(void);

/* One log line, with the call's trace id and request id when known (NULL
 * otherwise): " trace=... request_id=..." in text, fields in JSON
 * (LOG_FORMAT=json). */
void nrpc__logv(nrpc_log_level level, const char *trace_id, const char *request_id,
                const char *fmt, va_list ap);

/* Monotonic nanoseconds. */
int64_t nrpc__now_ns(void);

/* text.c. Copies n bytes of in into out (cap bytes, NUL-terminated,
 * truncated at a whole character), with control characters as \n, \r, \t
 * or \xNN and, when utf8_only is set, bytes that are not UTF-8 as \xNN.
 * Returns the length written. */
size_t nrpc__escape_text(char *out, size_t cap, const char *in, size_t n, int utf8_only);
/* A JSON string of s (NULL: ""): s itself when it is UTF-8, else s with
 * the bytes that are not as \xNN. New; NULL only when out of memory. */
json_t *nrpc__json_text(const char *s);
/* text.c. The n bytes of in as 2n lower-case hex digits into out (no NUL). */
void nrpc__hex(const unsigned char *in, size_t n, char *out);

/* Builds the full error reply text {"error": {...}}: new, free(). */
char *nrpc__error_text(int code, const char *type, const char *message);

/* Builds a NATS reply message for an error: headers + body. *out is new. */
natsStatus nrpc__error_msg(natsMsg **out, const char *reply, int code, const char *type,
                           const char *message);

/* A reply to an rpc request, read the one way (reply.c). Everything is
 * borrowed from the message. */
typedef struct {
    int code;            /* 0, 404 (no responders), or the service's 400..599
                          * (500 for a header that is not such a number) */
    int no_responders;   /* nobody listens on the subject */
    const char *message; /* for errors: Nats-Service-Error; else NULL */
    const char *data;    /* the body ("" when empty) */
    size_t len;
} nrpc__reply;
void nrpc__reply_read(natsMsg *msg, nrpc__reply *r);

/* Progress heartbeats, the callers' side (heartbeat.c; natsrpc.h says the
 * contract). */
/* The interval a request with this timeout asks for: NRPC_HEARTBEAT_MS, or
 * 0 (ask for none) when the timeout comes before a loss could be seen. */
int64_t nrpc__hb_interval(int64_t timeout_ms);
/* Silence after which a call is lost: NRPC_HEARTBEAT_MISSED intervals and
 * half of one more. */
int64_t nrpc__hb_limit(int64_t interval_ms);
/* Silence after the request was sent after which a watched call is lost
 * when no heartbeat came yet: one interval and half of one more (the
 * first heartbeat is due one interval after the handler started). */
int64_t nrpc__hb_first(int64_t interval_ms);
/* The 503 message of a call lost after silence_ms without a heartbeat
 * (every caller words it the same). */
void nrpc__hb_lost_message(char *out, size_t size, const char *subject, int64_t silence_ms);
/* 1 if msg is a heartbeat (header NRPC_HDR_HEARTBEAT), not the reply. */
int nrpc__is_heartbeat(natsMsg *msg);
/* Subjects known to send heartbeats, in a table of the caller's (not
 * locked here): learnt (a heartbeat came for a call to them; forgotten,
 * all at once, when the table is full) or expected (told, e.g. by the
 * gateway from the services' INFO; kept until un-told). At most 1024. */
int nrpc__hb_known(const nrpc_table *t, const char *subject);
void nrpc__hb_learn(nrpc_table *t, const char *subject);
/* expect 1: subject sends heartbeats (0, or -1 when out of memory or the
 * table holds 1024 expected ones); 0: not any more (learnt or expected). */
int nrpc__hb_expect(nrpc_table *t, const char *subject, int expect);
void nrpc__hb_forget(nrpc_table *t);
/* When a request to subject just sent (now_ms) counts as lost if nothing
 * comes: now + nrpc__hb_first when it asked for heartbeats (interval_ms >
 * 0) and subject is known to send them, else INT64_MAX (from its first
 * heartbeat on, every caller watches, with nrpc__hb_limit). */
int64_t nrpc__hb_watch(const nrpc_table *known, const char *subject, int64_t interval_ms,
                       int64_t now_ms);

/* Events on the wire (events.c; the natsrpc CLI's emit and events tail).
 * An event carries its id in NRPC_HDR_MSG_ID; a dead letter also carries
 * the event's id, subject and stream sequence, how often it was delivered
 * and the handler's last error. */
#define NRPC_HDR_EVENT_ID "Nrpc-Event-Id"
#define NRPC_HDR_EVENT_SUBJECT "Nrpc-Event-Subject"
#define NRPC_HDR_EVENT_SEQ "Nrpc-Event-Stream-Seq"
#define NRPC_HDR_DELIVERIES "Nrpc-Deliveries"
#define NRPC_HDR_EVENT_ERROR "Nrpc-Error"

/* A new event id: NRPC_EVENT_ID_LEN random hex digits and a NUL. */
#define NRPC_EVENT_ID_LEN 32
void nrpc__event_new_id(char out[NRPC_EVENT_ID_LEN + 1]);

/* Like nrpc_topic_subject, for a pattern of topics: a token may also be
 * '*' (any one token) and the last one '>' (one or more), as NATS reads
 * them; within a token they are refused ("a*" is not a wildcard). */
int nrpc__topic_pattern_subject(const char *pattern, char *out, size_t outlen);

/*
 * Frees a core NATS message that is ours alone: a request we created and
 * published, a reply taken from a subscription, a message handed to our
 * callback. natsMsg_Destroy gives every message to nats.c's collector thread
 * and wakes it when it sleeps, which it does between messages under load: a
 * futex wake and a context switch on the other core for each message. That
 * was a fifth of the gateway's CPU (two messages per request) and over a
 * third of a service's at 30 k requests/s. nats.c exports natsMsg_free, the
 * function its collector calls, without declaring it in nats.h: when the
 * library has it, the message is freed here at once; otherwise it goes to
 * the collector as before. Not for JetStream messages: nats.c may still use
 * those after a callback (auto-ack). NULL is ignored.
 */
void nrpc__msg_destroy(natsMsg *msg);
/* 1 when nrpc__msg_destroy frees at once (nats.c exports natsMsg_free). */
int nrpc__msg_destroy_direct(void);

#endif /* NRPC_INTERNAL_H */
