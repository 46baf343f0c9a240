/*
 * internal.h: private declarations shared by the files of framework/src. Nothing here
 * is part of the public API (natsrpc.h); names use the nrpc__ prefix.
 */
#ifndef NRPC_INTERNAL_H
#define NRPC_INTERNAL_H

#include "natsrpc.h"

#include <nats/nats.h>

/* Default NATS server when neither the caller nor NATS_URL names one. */
#define NRPC_DEFAULT_NATS_URL "nats://127.0.0.1:4222"

/*
 * Connects to NATS the way every natsrpc process does: url (NULL: $NATS_URL,
 * else the default; a comma-separated list is allowed), publishes written at
 * once (no 1 ms flusher delay), reconnects forever with a capped exponential
 * backoff and logs every disconnect and reconnect. When no server answers at
 * start, it keeps retrying in the background and returns NRPC_OK with a
 * connection that is not connected yet. *nc is new (natsConnection_Destroy).
 * connected_cb, if not NULL, runs (on a NATS thread) each time the
 * connection is (re)established.
 */
nrpc_status nrpc__nats_connect(natsConnection **nc, const char *url, const char *name,
                               void (*connected_cb)(void *closure), void *closure);

/* Reads an environment integer with a default and bounds; logs and keeps the
 * default when the value is not a number within [min, max]. */
long long nrpc__env_int(const char *name, long long def, long long min, long long max);

/* One log line, with the call's trace id and request id when known (NULL
 * otherwise): " trace=... request_id=..." in text, fields in JSON
 * (LOG_FORMAT=json). */
void nrpc__logv(nrpc_log_level level, const char *trace_id, const char *request_id,
                const char *fmt, va_list ap);

/* Monotonic nanoseconds. */
int64_t nrpc__now_ns(void);

/* Builds the full error reply text {"error": {...}}: new, free(). */
char *nrpc__error_text(int code, const char *type, const char *message);

/* Builds a NATS reply message for an error: headers + body. *out is new. */
natsStatus nrpc__error_msg(natsMsg **out, const char *reply, int code, const char *type,
                           const char *message);

#endif /* NRPC_INTERNAL_H */
