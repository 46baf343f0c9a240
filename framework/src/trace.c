/*
 * trace.c: W3C trace context, request ids and the sources of randomness in
 * natsrpc: ids (nrpc_random64, fast, not for secrets) and secrets
 * (nrpc__random_secret, the kernel's generator: keys, inboxes).
 *
 * Every hop gets a traceparent "00-<trace id>-<span id>-<flags>": the
 * caller's trace id and flags when it sent a valid traceparent, else a new
 * trace; the span id is always new (this hop). X-Request-Id is the caller's
 * when it is short printable ASCII, else the trace id. The gateway sets
 * both on every request; a service passes them on to the rpcs it calls.
 *
 * No I/O besides getrandom at a thread's first id: unit-tested in
 * tests/unit/test_gw_intro.c.
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int
trace_lower_hex(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int
trace_all_zero(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] != '0')
            return 0;
    return 1;
}

int
nrpc_traceparent_valid(const char *s)
{
    /* 00-<32 hex>-<16 hex>-<2 hex>, lower case; all-zero ids are invalid. */
    if (s == NULL || strlen(s) != NRPC_TRACEPARENT_LEN)
        return 0;
    if (s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return 0;
    if (!trace_lower_hex(s + 3, 32) || !trace_lower_hex(s + 36, 16) || !trace_lower_hex(s + 53, 2))
        return 0;
    return !trace_all_zero(s + 3, 32) && !trace_all_zero(s + 36, 16);
}

int
nrpc_request_id_valid(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (i = 0; s[i]; i++)
        if (i >= NRPC_REQUEST_ID_MAX || s[i] <= 32 || s[i] >= 127)
            return 0;
    return 1;
}

/* splitmix64, one state per thread, seeded from the kernel: ids only need
 * to be unique, and this keeps a syscall off the per-request path. */
uint64_t
nrpc_random64(void)
{
    static __thread uint64_t state;
    static __thread int seeded;
    uint64_t z;

    if (!seeded) {
        struct timespec ts;
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state) {
            clock_gettime(CLOCK_REALTIME, &ts);
            state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&z;
        }
        seeded = 1;
    }
    z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int
nrpc__random_secret(void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

void
nrpc_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;

    do {
        for (i = 0; i < n; i += 16) {
            uint64_t v = nrpc_random64();
            size_t j;
            for (j = 0; j < 16 && i + j < n; j++, v >>= 4)
                out[i + j] = hex[v & 15];
        }
    } while (trace_all_zero(out, n));
}

void
nrpc_trace_begin(nrpc_trace *t, const char *traceparent, const char *request_id)
{
    char span[16], flags[2] = {'0', '0'};

    if (nrpc_traceparent_valid(traceparent)) {
        memcpy(t->trace_id, traceparent + 3, 32);
        memcpy(flags, traceparent + 53, 2);
    } else {
        nrpc_random_hex(t->trace_id, 32);
    }
    t->trace_id[32] = '\0';
    nrpc_random_hex(span, sizeof span);
    snprintf(t->traceparent, sizeof t->traceparent, "00-%s-%.16s-%.2s", t->trace_id, span, flags);
    if (nrpc_request_id_valid(request_id))
        snprintf(t->request_id, sizeof t->request_id, "%s", request_id);
    else
        memcpy(t->request_id, t->trace_id, sizeof t->trace_id);
}
