/* log.c: one line per event on stderr, written with a single write() so
 * lines from several threads never interleave. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "natsrpc";
static int log_json = -1; /* LOG_FORMAT=json, read on first use */

void
nrpc_log_set_program(const char *name)
{
    const char *slash = name ? strrchr(name, '/') : NULL;
    if (name)
        log_program = slash ? slash + 1 : name;
}

static void
log_write(const char *line, size_t n)
{
    /* One write: an atomic line even when threads log at the same time. */
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
}

void
nrpc__logv(nrpc_log_level level, const char *trace_id, const char *request_id, const char *fmt,
           va_list ap)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char line[2048], stamp[40], msg[1536];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int w;

    if (log_json < 0) {
        const char *f = getenv("LOG_FORMAT");
        log_json = f && strcmp(f, "json") == 0;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", (ts.tv_nsec / 1000000L) % 1000);
    vsnprintf(msg, sizeof msg, fmt, ap);

    if (log_json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", stamp, "level", names[level & 3],
                              "program", log_program, "msg", msg);
        char *text;
        if (trace_id)
            json_object_set_new(o, "trace_id", json_string(trace_id));
        if (request_id)
            json_object_set_new(o, "request_id", json_string(request_id));
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (text) {
            size_t len = strlen(text);
            text[len] = '\n'; /* replaces the NUL: written by length */
            log_write(text, len + 1);
            free(text);
        }
        return;
    }
    {
        char suffix[128] = "";
        if (trace_id || request_id)
            snprintf(suffix, sizeof suffix, "%s%s%s%s", trace_id ? " trace=" : "",
                     trace_id ? trace_id : "", request_id ? " request_id=" : "",
                     request_id ? request_id : "");
        w = snprintf(line, sizeof line - 1, "%s %s %.64s: %s%s", stamp, names[level & 3],
                     log_program, msg, suffix);
    }
    n = w < 0 ? 0 : (size_t)w < sizeof line - 1 ? (size_t)w : sizeof line - 2;
    line[n++] = '\n';
    log_write(line, n);
}

void
nrpc_log(nrpc_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nrpc__logv(level, NULL, NULL, fmt, ap);
    va_end(ap);
}

void
nrpc_log_ids(nrpc_log_level level, const char *trace_id, const char *request_id, const char *fmt,
             ...)
{
    va_list ap;
    va_start(ap, fmt);
    nrpc__logv(level, trace_id && *trace_id ? trace_id : NULL,
               request_id && *request_id ? request_id : NULL, fmt, ap);
    va_end(ap);
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
