/*
 * main.c: natsrpc-gateway, an HTTP front end for natsrpc services.
 *
 *   POST /<service>.<method>   body [args, kwargs] -> NATS request -> reply body
 *   GET  /healthz              200 {"status":"ok", "nats_rebuilds": n} / 503 while NATS
 *                              is down or its connection is being rebuilt
 *
 * Settings come from the environment; the table below is the single source
 * for parsing, defaults and --help. SIGTERM/SIGINT drain: stop accepting,
 * let requests in flight be answered (up to GATEWAY_DRAIN_TIMEOUT), then
 * exit 0. A second signal cuts the drain short.
 */
#define _GNU_SOURCE /* sched_getaffinity */
#include "auth/auth.h"
#include "bridge/bridge.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { SET_STRING, SET_UINT, SET_SECONDS, SET_BYTES, SET_BOOL };

typedef struct {
    const char *name;
    const char *def;
    int kind;
    unsigned long long min, max; /* SET_UINT and SET_BYTES */
    const char *help;
} gw_setting;

static const gw_setting gw_settings[] = {
    {"GATEWAY_HOST", "127.0.0.1", SET_STRING, 0, 0, "address to listen on (only this one)"},
    {"GATEWAY_PORT", "5000", SET_UINT, 0, 65535, "TCP port (0 picks a free one)"},
    {"NATS_URL", "nats://127.0.0.1:4222", SET_STRING, 0, 0, "NATS server(s), comma-separated"},
    {"GATEWAY_TIMEOUT", "60", SET_SECONDS, 0, 0,
     "seconds a request waits for its reply (fractions allowed, at most 300); "
     "per request: ?timeout=S or header X-Timeout: S"},
    {"GATEWAY_MAX_BODY", "1048576", SET_BYTES, 1, 1ULL << 30,
     "largest request body in bytes (larger: 413)"},
    {"GATEWAY_THREADS", "0", SET_UINT, 0, 256,
     "event loops, one thread each with its own HTTP listener and NATS connection "
     "(0: one per CPU)"},
    {"GATEWAY_MAX_CONNECTIONS", "10000", SET_UINT, 1, 1000000,
     "open HTTP connections at most (lowered to fit the open-file limit)"},
    {"GATEWAY_IDLE_TIMEOUT", "120", SET_UINT, 0, 86400,
     "seconds before an idle HTTP connection is closed (0: never)"},
    {"GATEWAY_DRAIN_TIMEOUT", "30", SET_SECONDS, 0, 0,
     "seconds to wait for requests in flight on SIGTERM/SIGINT"},
    {"GATEWAY_ACCESS_LOG", "1", SET_BOOL, 0, 1,
     "1: log one line per request (method, path, status, ms); 0: off"},
    {"GATEWAY_DOCS_DIR", GW_DEFAULT_DOCS_DIR, SET_STRING, 0, 0,
     "Swagger UI's files (swagger-ui-dist), served at /docs/"},
    {"GATEWAY_STATIC_DIR", GW_DEFAULT_STATIC_DIR, SET_STRING, 0, 0,
     "the front end's files, served at / (index.html) and /<file>"},
    {"GATEWAY_WAMP_REALM", "realm1", SET_STRING, 0, 0,
     "the WAMP realm of GET /websocket (WAMP v2, subprotocol wamp.2.json)"},
    {"GATEWAY_WS_MAX_MESSAGE", "1048576", SET_BYTES, 125, 1ULL << 30,
     "largest WebSocket message in bytes (larger: close 1009)"},
    {"GATEWAY_WS_MAX_QUEUE", "4194304", SET_BYTES, 1024, 1ULL << 32,
     "bytes queued to one slow WebSocket before it is dropped"},
    {"GATEWAY_WS_PING", "30", SET_SECONDS, 0, 0,
     "seconds of WebSocket silence before a ping; no answer for as long: dropped"},
    {"GATEWAY_WS_ORIGINS", "", SET_STRING, 0, 0,
     "origins, besides the gateway's own and GATEWAY_CORS_ORIGINS, whose pages may open "
     "/websocket (comma-separated; *: any)"},
    {"GATEWAY_WS_HELLO_TIMEOUT", "10", SET_SECONDS, 0, 0,
     "seconds a WebSocket may stay open without a WAMP session (HELLO); then close 1008"},
    {"GATEWAY_AUTH", "", SET_STRING, 0, 0,
     "credentials file (JSON: tokens, basic, jwt, authorizer; TOML when named *.toml); "
     "unset: auth is off, every rpc open"},
    {"GATEWAY_CORS_ORIGINS", "", SET_STRING, 0, 0,
     "origins besides the gateway's own whose pages may call rpcs (comma-separated, exact, "
     "e.g. https://app.example.com): CORS answers and the CSRF check"},
    {"GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "256", SET_UINT, 0, 1000000,
     "open HTTP and WebSocket connections per client address (IPv4, or IPv6 /64), every loop "
     "together (0: no cap)"},
    {"GATEWAY_RATE_LIMIT", "1000", SET_UINT, 0, 100000000,
     "HTTP requests per second per client address (token bucket; over it: 429 with "
     "Retry-After; 0: off)"},
    {"GATEWAY_RATE_BURST", "2000", SET_UINT, 1, 100000000,
     "requests a client address may send at once before GATEWAY_RATE_LIMIT applies"},
    {"GATEWAY_HEADER_TIMEOUT", "10", SET_SECONDS, 0, 0,
     "seconds a new connection has to send its first request's headers; then it is closed"},
    {"GATEWAY_MAX_BODY_MEMORY", "67108864", SET_BYTES, 1024, 1ULL << 40,
     "bytes held in unfinished request bodies, the whole gateway (over it: 503 with "
     "Retry-After)"},
    {"GATEWAY_WAMP_MAX_SUBSCRIPTIONS", "1000", SET_UINT, 0, 10000000,
     "WAMP subscriptions one session may hold (over it: natsrpc.error.limit_exceeded; 0: no cap)"},
    {"GATEWAY_WAMP_PUBLISH_RATE", "100", SET_UINT, 0, 10000000,
     "WAMP publications per second per session, twice as many at once (over it: dropped, "
     "natsrpc.error.limit_exceeded when acknowledged; 0: no cap)"},
    {"GATEWAY_WAMP_MAX_CALLS", "1000", SET_UINT, 1, 10000000,
     "WAMP calls in flight per session (over it: natsrpc.error.overloaded)"},
    {NULL},
};

static void
usage(FILE *f)
{
    const gw_setting *s;

    fprintf(f,
            "usage: natsrpc-gateway [--help] [--version]\n"
            "\n"
            "HTTP gateway for natsrpc services (natsrpc %s).\n"
            "  POST /<service>.<method>  sends the body as a NATS request to that subject\n"
            "                            and answers with the reply (JSON)\n"
            "  METHOD /path              the REST routes the services declare ($SRV.INFO):\n"
            "                            path, query and JSON body bind to the rpc's params\n"
            "  GET  /healthz             200 {\"status\":\"ok\"}, 503 while NATS is down or\n"
            "                            its connection is being rebuilt\n"
            "  GET  /services            the services found on NATS ($SRV.INFO), ?refresh=1\n"
            "  GET  /openapi.json        OpenAPI 3.1 of every rpc found; Swagger UI at /docs\n"
            "  GET  /metadata            name, version, API version of the gateway\n"
            "  GET  /metrics             Prometheus metrics\n"
            "  GET  /websocket           WAMP v2 over WebSocket (wamp.2.json): subscribe,\n"
            "                            publish and call on NATS subjects\n"
            "  GET  /                    the front end (GATEWAY_STATIC_DIR)\n"
            "\n"
            "Settings (environment variables, default in brackets):\n",
            NRPC_VERSION);
    for (s = gw_settings; s->name; s++)
        fprintf(f, "  %-24s %s [%s]\n", s->name, s->help, s->def);
    fprintf(f, "\nNATS credentials and TLS:\n%s",
            NRPC_NATS_ENV_HELP);
    fprintf(f, "\nSIGTERM or SIGINT: stop accepting, answer requests in flight, exit 0.\n");
}

static const char *
setting_value(const gw_setting *s)
{
    const char *v = getenv(s->name);
    return v && *v ? v : s->def;
}

/* Reads one setting into its place in cfg. Returns -1 (logged) when the
 * value does not parse: a gateway with a mistyped setting should not start. */
/* GATEWAY_AUTH: a file that does not load stops the gateway; without one
 * every rpc is open, which is said loudly at start (main). */
static int
gw_auth_start(const char *path, gw_config *cfg)
{
    gw_auth *a = NULL;
    char err[512], what[512];

    if (gw_auth_load(path, &a, err, sizeof err) != 0) {
        nrpc_log(NRPC_LOG_ERROR, "GATEWAY_AUTH=%s: %s", path, err);
        return -1;
    }
    gw_auth_describe(a, what, sizeof what);
    nrpc_log(NRPC_LOG_INFO, "auth on (%s): %s", path, what);
    cfg->auth = a;
    return 0;
}

static int
setting_load(const gw_setting *s, gw_config *cfg, int64_t *drain_ms)
{
    const char *v = setting_value(s);
    unsigned long long u = 0;
    int64_t ms = 0;

    if (s->kind == SET_UINT || s->kind == SET_BYTES || s->kind == SET_BOOL) {
        char *end = NULL;
        errno = 0;
        u = strtoull(v, &end, 10);
        if (v[0] == '-' || errno != 0 || end == v || *end != '\0' || u < s->min || u > s->max) {
            nrpc_log(NRPC_LOG_ERROR, "%s=%s: expected an integer in [%llu, %llu]", s->name, v,
                     s->min, s->max);
            return -1;
        }
    } else if (s->kind == SET_SECONDS) {
        if (gw_parse_timeout(v,
                             strcmp(s->name, "GATEWAY_TIMEOUT") == 0 ? GW_MAX_TIMEOUT_MS : 86400000,
                             &ms) != 0) {
            nrpc_log(NRPC_LOG_ERROR, "%s=%s: expected seconds > 0", s->name, v);
            return -1;
        }
    }
    if (strcmp(s->name, "GATEWAY_HOST") == 0)
        cfg->host = v;
    else if (strcmp(s->name, "GATEWAY_PORT") == 0)
        cfg->port = (unsigned)u;
    else if (strcmp(s->name, "GATEWAY_TIMEOUT") == 0)
        cfg->timeout_ms = ms;
    else if (strcmp(s->name, "GATEWAY_MAX_BODY") == 0)
        cfg->max_body = (size_t)u;
    else if (strcmp(s->name, "GATEWAY_THREADS") == 0)
        cfg->threads = (unsigned)u;
    else if (strcmp(s->name, "GATEWAY_MAX_CONNECTIONS") == 0)
        cfg->conn_limit = (unsigned)u;
    else if (strcmp(s->name, "GATEWAY_IDLE_TIMEOUT") == 0)
        cfg->conn_timeout = (unsigned)u;
    else if (strcmp(s->name, "GATEWAY_DRAIN_TIMEOUT") == 0)
        *drain_ms = ms;
    else if (strcmp(s->name, "GATEWAY_ACCESS_LOG") == 0)
        cfg->access_log = (int)u;
    else if (strcmp(s->name, "GATEWAY_DOCS_DIR") == 0)
        cfg->docs_dir = v;
    else if (strcmp(s->name, "GATEWAY_STATIC_DIR") == 0)
        cfg->static_dir = v;
    else if (strcmp(s->name, "GATEWAY_WAMP_REALM") == 0)
        cfg->wamp_realm = v;
    else if (strcmp(s->name, "GATEWAY_WS_MAX_MESSAGE") == 0)
        cfg->ws_max_message = (size_t)u;
    else if (strcmp(s->name, "GATEWAY_WS_MAX_QUEUE") == 0)
        cfg->ws_max_queue = (size_t)u;
    else if (strcmp(s->name, "GATEWAY_WS_PING") == 0)
        cfg->ws_ping_ms = ms;
    else if (strcmp(s->name, "GATEWAY_WS_ORIGINS") == 0)
        cfg->ws_origins = v;
    else if (strcmp(s->name, "GATEWAY_WS_HELLO_TIMEOUT") == 0)
        cfg->ws_hello_ms = ms;
    else if (strcmp(s->name, "GATEWAY_AUTH") == 0 && *v)
        return gw_auth_start(v, cfg);
    else if (strcmp(s->name, "GATEWAY_CORS_ORIGINS") == 0)
        cfg->cors_origins = v;
    else if (strcmp(s->name, "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS") == 0)
        cfg->conn_per_addr = (unsigned)u;
    else if (strcmp(s->name, "GATEWAY_RATE_LIMIT") == 0)
        cfg->rate = (unsigned)u;
    else if (strcmp(s->name, "GATEWAY_RATE_BURST") == 0)
        cfg->rate_burst = (unsigned)u;
    else if (strcmp(s->name, "GATEWAY_HEADER_TIMEOUT") == 0)
        cfg->header_timeout_ms = ms;
    else if (strcmp(s->name, "GATEWAY_MAX_BODY_MEMORY") == 0)
        cfg->body_memory = (size_t)u;
    else if (strcmp(s->name, "GATEWAY_WAMP_MAX_SUBSCRIPTIONS") == 0)
        cfg->wamp_max_subs = (size_t)u;
    else if (strcmp(s->name, "GATEWAY_WAMP_PUBLISH_RATE") == 0)
        cfg->wamp_publish_rate = (unsigned)u;
    else if (strcmp(s->name, "GATEWAY_WAMP_MAX_CALLS") == 0)
        cfg->wamp_max_calls = (unsigned)u;
    return 0;
}

/* Each connection costs a descriptor: raise the soft limit to the hard one
 * and keep the connection limit under it, with room for NATS and logs. */
static void
fit_connection_limit(gw_config *cfg)
{
    struct rlimit rl;
    unsigned fit;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return;
    fit = rl.rlim_cur > 128 ? (unsigned)(rl.rlim_cur > 2000000 ? 2000000 : rl.rlim_cur) - 64 : 64;
    if (cfg->conn_limit > fit) {
        nrpc_log(NRPC_LOG_WARN, "GATEWAY_MAX_CONNECTIONS=%u exceeds the open-file limit; using %u",
                 cfg->conn_limit, fit);
        cfg->conn_limit = fit;
    }
}

/* GATEWAY_THREADS=0: one loop per CPU this process may run on. */
static unsigned
cpu_count(void)
{
    cpu_set_t set;
    int n = 0;

    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    return n > 0 ? (unsigned)n : 1;
}

/* Waits up to ms for a signal in set; returns the signal or 0. */
static int
wait_signal(const sigset_t *set, int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

int
main(int argc, char **argv)
{
    gw_config cfg = {0};
    int64_t drain_ms = 0, deadline;
    const gw_setting *s;
    gw_gateway *gw = NULL;
    sigset_t set;
    int i, sig, cut = 0;

    nrpc_log_set_program("natsrpc-gateway");
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("natsrpc-gateway %s\n", NRPC_VERSION);
            return 0;
        }
        fprintf(stderr, "natsrpc-gateway: unknown argument '%s'\n\n", argv[i]);
        usage(stderr);
        return 2;
    }
    for (s = gw_settings; s->name; s++)
        if (setting_load(s, &cfg, &drain_ms) != 0)
            return 2;
    if (cfg.auth == NULL)
        nrpc_log(NRPC_LOG_WARN,
                 "AUTH IS OFF: anyone who can reach this gateway can call every rpc "
                 "(set GATEWAY_AUTH to a credentials file; see README, \"Putting it on the "
                 "internet\")");
    if (cfg.threads == 0)
        cfg.threads = cpu_count();
    fit_connection_limit(&cfg);
#ifdef M_MMAP_THRESHOLD
    /* Request bodies past 128 KiB get pages of their own, given back to the
     * system when the request ends. glibc would otherwise raise this
     * threshold after the first large free and serve later bodies from its
     * heaps, which keep what a burst of uploads took (RSS that only grows,
     * up to GATEWAY_MAX_BODY_MEMORY per arena). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif

    /* Signals are taken synchronously by this thread: block them before any
     * thread starts so every thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (gw_gateway_start(&gw, &cfg) != NRPC_OK)
        return 1;
    nrpc_log(NRPC_LOG_INFO,
             "listening on http://%s:%u (%u loops, timeout %.3g s, max body %zu, "
             "max connections %u)",
             cfg.host, gw_gateway_port(gw), cfg.threads, (double)cfg.timeout_ms / 1000.0,
             cfg.max_body, cfg.conn_limit);

    do
        sig = wait_signal(&set, 3600 * 1000);
    while (sig == 0);

    /* Drain: no new connections; answers close their connections; wait for
     * what is in flight. */
    nrpc_log(NRPC_LOG_INFO, "%s: draining %d requests (up to %.3g s)", strsignal(sig),
             gw_gateway_in_flight(gw), (double)drain_ms / 1000.0);
    gw_gateway_quiesce(gw);
    deadline = nrpc_now_ms() + drain_ms;
    while (gw_gateway_in_flight(gw) > 0 && nrpc_now_ms() < deadline) {
        if (wait_signal(&set, 10) != 0) {
            nrpc_log(NRPC_LOG_WARN, "second signal: cutting the drain short");
            cut = 1;
            break;
        }
    }
    if (gw_gateway_in_flight(gw) > 0)
        nrpc_log(NRPC_LOG_WARN, "%d requests still in flight; failing them with 503",
                 gw_gateway_in_flight(gw));
    /* Each loop destroys its client, which answers whatever still waits
     * (503) and resumes those connections; give the loops a moment to
     * send the answers. */
    gw_gateway_release(gw);
    deadline = nrpc_now_ms() + 1000;
    while (gw_gateway_in_flight(gw) > 0 && nrpc_now_ms() < deadline)
        wait_signal(&set, 10);
    gw_gateway_stop(gw);
    gw_auth_free((gw_auth *)cfg.auth);
    nrpc_log(NRPC_LOG_INFO, "stopped%s", cut ? " (drain cut short)" : "");
    return 0;
}
