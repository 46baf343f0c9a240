/* log.c: one line per event on stderr, written with a single write() so
 * lines from several threads never interleave. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "natsrpc";

void
nrpc_log_set_program(const char *name)
{
    const char *slash = name ? strrchr(name, '/') : NULL;
    if (name)
        log_program = slash ? slash + 1 : name;
}

void
nrpc_log(nrpc_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;
    int w;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    w = snprintf(line + n, sizeof line - n, ".%03ldZ %s %s: ", ts.tv_nsec / 1000000L,
                 names[level & 3], log_program);
    if (w > 0)
        n += (size_t)w < sizeof line - n ? (size_t)w : sizeof line - n - 1;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (w > 0)
        n += (size_t)w < sizeof line - n ? (size_t)w : sizeof line - n - 1;
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    /* One write: an atomic line even when threads log at the same time. */
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
}

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

long long
nrpc__env_int(const char *name, long long def, long long min, long long max)
{
    const char *v = getenv(name);
    char *end = NULL;
    long long x;

    if (v == NULL || *v == '\0')
        return def;
    x = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || x < min || x > max) {
        nrpc_log(NRPC_LOG_WARN, "%s=%s is not a number in [%lld, %lld]; using %lld", name, v, min,
                 max, def);
        return def;
    }
    return x;
}
