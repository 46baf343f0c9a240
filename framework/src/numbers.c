/* numbers.c: clocks, integer settings and header numbers, and the one
 * backoff of natsrpc (NATS reconnects, database connections, migrations). */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int64_t
nrpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
nrpc__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
nrpc_parse_int64(const char *s, int64_t *out)
{
    char *end = NULL;
    long long x;

    if (s == NULL || *s == '\0' || *s == ' ' || *s == '\t')
        return -1;
    errno = 0;
    x = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return -1;
    *out = (int64_t)x;
    return 0;
}

long long
nrpc_env_int(const char *name, long long def, long long min, long long max)
{
    const char *v = getenv(name);
    int64_t x;

    if (v == NULL || *v == '\0')
        return def;
    if (nrpc_parse_int64(v, &x) != 0 || x < min || x > max) {
        nrpc_log(NRPC_LOG_WARN, "%s=%s is not a number in [%lld, %lld]; using %lld", name, v, min,
                 max, def);
        return def;
    }
    return x;
}

int64_t
nrpc_backoff_ms(int attempt, int64_t min_ms, int64_t max_ms)
{
    int64_t d = min_ms > 0 ? min_ms : 1;
    int i;

    if (max_ms < d)
        max_ms = d;
    for (i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return d + (int64_t)(nrpc_random64() % (uint64_t)(d / 10 + 1));
}
