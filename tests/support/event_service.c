/* event_service.c: a service that emits and handles events as its
 * environment says, for the event tests and the benchmark.
 *
 *   EVENT_SERVICE   its name (default event_service)
 *   EMITS           events it emits, comma-separated ("ping,pong")
 *   HANDLES         events it handles, comma-separated "<service>.<event>"
 *   FAIL_FIRST      a handler fails the first N deliveries of each event
 *   QUIET           1: handlers report only failures
 *   EVENT_ACCESS    who may subscribe to its events through a gateway with
 *                   auth on (nrpc_event.access; default: authenticated)
 *
 * Each delivery to a handler is reported as a core NATS publish on the
 * topic "handled.<service>" (subject events.handled.<service>): [[], {id,
 * attempt, subject, pid, kwargs, ok}]. An event whose kwargs carry
 * "poison": true always fails; "n" must be an integer if present.
 *
 * rpcs: emit(event, kwargs={}, id=null, count=1) stores count events (ids
 * <id>-<i> when id is given) and answers once JetStream acknowledged them
 * all, with [[stored, failed], {}]; emit_many(event, n, size) emits n
 * events of about size bytes and answers [[seconds], {}]. */
#include <natsrpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail_first;

/* ---- handling ---------------------------------------------------------- */

static void
report(nrpc_call *call, int ok)
{
    char topic[200];
    nrpc_service *svc = nrpc_call_service(call);
    const char *id = nrpc_event_id(call);

    snprintf(topic, sizeof topic, "handled.%s", nrpc_service_def_of(svc)->name);
    nrpc_service_publish(svc, topic, NULL,
                         json_pack("{s:s?, s:i, s:s, s:i, s:O, s:b}", "id", id, "attempt",
                                   nrpc_event_attempt(call), "subject", nrpc_call_subject(call),
                                   "pid", (int)getpid(), "kwargs", nrpc_call_varkw(call), "ok",
                                   ok));
}

static int quiet; /* QUIET=1: no reports (the benchmark counts acks instead) */

static void
on_event(nrpc_call *call)
{
    json_t *poison = json_object_get(nrpc_call_varkw(call), "poison");

    if (json_is_true(poison)) {
        report(call, 0);
        nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "poisoned event");
        return;
    }
    if (nrpc_event_attempt(call) <= fail_first) {
        report(call, 0);
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, NULL, "failing delivery %d on purpose",
                  nrpc_event_attempt(call));
        return;
    }
    if (!quiet)
        report(call, 1);
    nrpc_reply(call, NULL, NULL);
}

/* ---- emitting ---------------------------------------------------------- */

typedef struct {
    nrpc_call *call;
    int left, stored, failed;
    int64_t started_ns;
} batch;

/* One emit (or the loop that started them) is over; the last answers. */
static void
batch_step(batch *b)
{
    if (--b->left > 0)
        return;
    if (b->started_ns) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        nrpc_reply_value(b->call,
                         json_real((double)(ts.tv_sec * 1000000000LL + ts.tv_nsec -
                                            b->started_ns) / 1e9));
    } else {
        nrpc_reply(b->call, json_pack("[i, i]", b->stored, b->failed), NULL);
    }
    nrpc_call_release(b->call);
    free(b);
}

static void
batch_done(nrpc_service *svc, int code, const char *error, void *arg)
{
    batch *b = arg;

    if (code == 0)
        b->stored++;
    else
        b->failed++;
    batch_step(b);
}

/* Emits n events; the call is answered when the last is acknowledged. */
static void
emit_batch(nrpc_call *call, const char *event, const char *id, json_t *kwargs, int n,
           int64_t started_ns)
{
    nrpc_service *svc = nrpc_call_service(call);
    batch *b = calloc(1, sizeof *b);
    int i;

    if (b == NULL || n < 1) {
        free(b);
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL, "nothing to emit");
        return;
    }
    b->call = nrpc_call_hold(call);
    b->left = n + 1; /* + this loop, so no answer comes before it ends */
    b->started_ns = started_ns;
    nrpc_call_defer(call);
    for (i = 0; i < n; i++) {
        char one[160];
        nrpc_status st;

        if (id)
            snprintf(one, sizeof one, n == 1 ? "%s" : "%s-%d", id, i);
        st = nrpc_service_emit(svc, event, id ? one : NULL, NULL, json_incref(kwargs), batch_done,
                               b);
        if (st != NRPC_OK) /* refused: no callback comes for it */
            batch_done(svc, 503, nrpc_status_text(st), b);
    }
    batch_step(b);
}

static void
emit(nrpc_call *call)
{
    json_t *kwargs = nrpc_arg(call, "kwargs");

    if (!json_is_object(kwargs)) {
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL, "kwargs must be an object");
        return;
    }
    emit_batch(call, nrpc_arg_string(call, "event"), nrpc_arg_string(call, "id"), kwargs,
               (int)nrpc_arg_int(call, "count"), 0);
}

static void
emit_many(nrpc_call *call)
{
    json_int_t size = nrpc_arg_int(call, "size");
    char *pad = malloc(size > 0 ? (size_t)size + 1 : 1);
    struct timespec ts;
    json_t *kwargs;

    if (pad == NULL) {
        nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "out of memory");
        return;
    }
    memset(pad, 'x', size > 0 ? (size_t)size : 0);
    pad[size > 0 ? size : 0] = '\0';
    kwargs = json_pack("{s:s}", "pad", pad);
    free(pad);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    emit_batch(call, nrpc_arg_string(call, "event"), NULL, kwargs, (int)nrpc_arg_int(call, "n"),
               ts.tv_sec * 1000000000LL + ts.tv_nsec);
    json_decref(kwargs);
}

static const nrpc_param emit_params[] = {
    {"event", NRPC_STRING, NULL},
    {"kwargs", NRPC_OBJECT, "{}"},
    {"id", NRPC_STRING, "null"},
    {"count", NRPC_INTEGER, "1"},
    {NULL},
};
static const nrpc_param emit_many_params[] = {
    {"event", NRPC_STRING, NULL},
    {"n", NRPC_INTEGER, NULL},
    {"size", NRPC_INTEGER, "100"},
    {NULL},
};
static const nrpc_rpc rpcs[] = {
    {"emit", emit, emit_params, "Emits events and answers once they are stored.", 0},
    {"emit_many", emit_many, emit_many_params, "Emits n events; answers the seconds it took.", 0},
    {NULL},
};

/* Handlers take any kwargs but check "n" when it is there. */
static const nrpc_param handler_params[] = {
    {"n", NRPC_INTEGER, "0"},
    {NULL},
};

/* Splits a comma-separated list into a new array of strings (and its count). */
static char **
split(const char *text, size_t *n)
{
    char *copy = strdup(text ? text : ""), *save = NULL, *tok;
    char **out = calloc(strlen(copy) + 1, sizeof *out);

    *n = 0;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        out[(*n)++] = strdup(tok);
    free(copy);
    return out;
}

int
main(int argc, char **argv)
{
    const char *name = getenv("EVENT_SERVICE");
    size_t ne, nh, i;
    char **emits = split(getenv("EMITS"), &ne), **handles = split(getenv("HANDLES"), &nh);
    nrpc_event *ev = calloc(ne + 1, sizeof *ev);
    nrpc_event_handler *hs = calloc(nh + 1, sizeof *hs);
    nrpc_service_def def = {
        .name = name && *name ? name : "event_service",
        .version = "1.0.0",
        .description = "Emits and handles events for the tests.",
        .rpcs = rpcs,
        .emits = ev,
        .handles = hs,
    };
    int rc;

    fail_first = (int)nrpc_env_int("FAIL_FIRST", 0, 0, 1000);
    quiet = (int)nrpc_env_int("QUIET", 0, 0, 1);
    for (i = 0; i < ne; i++) {
        ev[i].name = emits[i];
        ev[i].access = getenv("EVENT_ACCESS");
    }
    for (i = 0; i < nh; i++) {
        char *dot = strchr(handles[i], '.');
        if (dot == NULL) {
            fprintf(stderr, "HANDLES: '%s' is not <service>.<event>\n", handles[i]);
            return 2;
        }
        *dot = '\0';
        hs[i].service = handles[i];
        hs[i].event = dot + 1;
        hs[i].handler = on_event;
        hs[i].params = handler_params;
        hs[i].flags = NRPC_VARKW;
        hs[i].description = "Reports each delivery on handled.<service>.";
    }
    rc = nrpc_service_main(&def, argc, argv);
    for (i = 0; i < ne; i++)
        free(emits[i]);
    for (i = 0; i < nh; i++)
        free(handles[i]);
    free(emits);
    free(handles);
    free(ev);
    free(hs);
    return rc;
}
