/* log.c: one line per event on stderr, written with a single write() so
 * lines from several threads never interleave. A thread that runs an event
 * loop may batch its lines (nrpc_log_batch): whole lines gather in a buffer
 * of its own and go out in one write() when the loop flushes them. */
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

/* The batch of this thread (nrpc_log_batch), NULL when it writes each line
 * at once. */
#define LOG_BATCH_CAP (32 * 1024)
static __thread char *log_batch;
static __thread size_t log_batch_len;

static void
log_out(const char *text, size_t n)
{
    if (write(STDERR_FILENO, text, n) < 0) {
        /* nowhere left to report it */
    }
}

static void
log_write(const char *line, size_t n)
{
    if (log_batch != NULL && n <= LOG_BATCH_CAP) {
        if (log_batch_len + n > LOG_BATCH_CAP)
            nrpc_log_flush();
        memcpy(log_batch + log_batch_len, line, n);
        log_batch_len += n;
        return;
    }
    /* One write: an atomic line even when threads log at the same time. */
    nrpc_log_flush();
    log_out(line, n);
}

void
nrpc_log_flush(void)
{
    if (log_batch == NULL || log_batch_len == 0)
        return;
    /* Whole lines only, so lines of other threads still fall between them. */
    log_out(log_batch, log_batch_len);
    log_batch_len = 0;
}

void
nrpc_log_batch(int on)
{
    if (on && log_batch == NULL) {
        log_batch = malloc(LOG_BATCH_CAP); /* NULL: lines go out one by one */
        log_batch_len = 0;
    } else if (!on && log_batch != NULL) {
        nrpc_log_flush();
        free(log_batch);
        log_batch = NULL;
    }
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" into stamp (at least 25 bytes). The part up to
 * the seconds is formatted once per second and thread, not once per line. */
static void
log_stamp(char *stamp)
{
    static __thread time_t cached_sec = (time_t)-1;
    static __thread char cached[24];
    struct timespec ts;
    long ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            cached[0] = '\0';
        cached_sec = ts.tv_sec;
    }
    ms = (ts.tv_nsec / 1000000L) % 1000;
    {
        size_t n = strlen(cached);
        memcpy(stamp, cached, n);
        stamp[n] = '.';
        stamp[n + 1] = (char)('0' + ms / 100);
        stamp[n + 2] = (char)('0' + ms / 10 % 10);
        stamp[n + 3] = (char)('0' + ms % 10);
        stamp[n + 4] = 'Z';
        stamp[n + 5] = '\0';
    }
}

/* Appends the NUL-terminated s to buf (len used of cap, one byte kept for
 * the NUL), truncating. Returns the new length. */
static size_t
log_append(char *buf, size_t len, size_t cap, const char *s)
{
    size_t n = strlen(s);

    if (n > cap - 1 - len)
        n = cap - 1 - len;
    memcpy(buf + len, s, n);
    buf[len + n] = '\0';
    return len + n;
}

void
nrpc__logv(nrpc_log_level level, const char *trace_id, const char *request_id, const char *fmt,
           va_list ap)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char line[2048], stamp[40];
    size_t n;
    int w;

    if (log_json < 0) {
        const char *f = getenv("LOG_FORMAT");
        log_json = f && strcmp(f, "json") == 0;
    }
    log_stamp(stamp);

    if (log_json) {
        char msg[1536];
        json_t *o;
        char *text;

        vsnprintf(msg, sizeof msg, fmt, ap);
        /* A message that is not UTF-8 (a client's path) keeps its bytes as
         * \xNN: the line is still written, and is still JSON. */
        o = json_pack("{s:s, s:s, s:s, s:o}", "time", stamp, "level", names[level & 3],
                      "program", log_program, "msg", nrpc__json_text(msg));
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
    /* "<stamp> <LEVEL> <program>: <msg>[ trace=<id>][ request_id=<id>]", built
     * in place: the message, escaped, fills what the ids' part (at most 127
     * bytes) leaves of the line (2046 plus the newline). */
    {
        char suffix[128];
        size_t mlen, slen = 0, cap = sizeof line - 1; /* room for the newline */

        n = log_append(line, 0, cap, stamp);
        n = log_append(line, n, cap, " ");
        n = log_append(line, n, cap, names[level & 3]);
        n = log_append(line, n, cap, " ");
        {
            size_t pl = strlen(log_program);
            if (pl > 64)
                pl = 64;
            memcpy(line + n, log_program, pl);
            n += pl;
        }
        n = log_append(line, n, cap, ": ");
        {
            /* Control characters are escaped: a "%0A" in a client's path
             * must not start a line of its own. */
            char msg[1536];
            w = vsnprintf(msg, sizeof msg, fmt, ap);
            mlen = w < 0 ? 0 : (size_t)w < sizeof msg ? (size_t)w : sizeof msg - 1;
            n += nrpc__escape_text(line + n, cap - n - 127, msg, mlen, 0);
        }
        suffix[0] = '\0';
        if (trace_id) {
            slen = log_append(suffix, slen, sizeof suffix, " trace=");
            slen = log_append(suffix, slen, sizeof suffix, trace_id);
        }
        if (request_id) {
            slen = log_append(suffix, slen, sizeof suffix, " request_id=");
            slen = log_append(suffix, slen, sizeof suffix, request_id);
        }
        n = log_append(line, n, cap, suffix);
    }
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
