/* faulty_service.c: a service whose handlers misbehave on purpose, so the
 * integration tests can see that failures are answered and never take the
 * process down. Subjects: faulty_service.no_reply, faulty_service.fail,
 * faulty_service.echo, faulty_service.relay. */
#include <natsrpc.h>

#include <stdlib.h>
#include <string.h>

/* Returns without answering: the framework must answer 500. */
static void
no_reply(nrpc_call *call)
{
}

static void
fail(nrpc_call *call)
{
    nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "boom");
}

/* Echoes its varargs and varkw back: [args, kwargs] unchanged. */
static void
echo(nrpc_call *call)
{
    nrpc_reply(call, json_incref(nrpc_call_varargs(call)), json_incref(nrpc_call_varkw(call)));
}

/* arg is a heap closure: freed here, so a callback that never ran would
 * leak (LeakSanitizer says so), and the log line shows how it ended. */
static void
relay_done(nrpc_call *call, int code, json_t *args, json_t *kwargs, const char *message,
           void *arg)
{
    nrpc_call_log(call, NRPC_LOG_INFO, "relay_done code=%d arg=%s", code, (char *)arg);
    free(arg);
    if (code != 0)
        nrpc_fail(call, code, NULL, "%s", message);
    else
        nrpc_reply(call, json_incref(args), json_incref(kwargs));
}

/* Calls another rpc and answers with its answer: service-to-service calls
 * carry the trace context on. */
static void
relay(nrpc_call *call)
{
    char *arg = strdup("closure");
    nrpc_status s = nrpc_call_request(call, nrpc_arg_string(call, "subject"),
                                      json_incref(nrpc_arg(call, "args")),
                                      json_incref(nrpc_arg(call, "kwargs")),
                                      (int64_t)(nrpc_arg_number(call, "timeout") * 1000),
                                      relay_done, arg);
    if (s != NRPC_OK)
        free(arg); /* refused: the callback never runs */
    if (s != NRPC_OK)
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, NULL, "cannot call %s: %s",
                  nrpc_arg_string(call, "subject"), nrpc_status_text(s));
}

static const nrpc_param relay_params[] = {
    {"subject", NRPC_STRING, NULL, "the rpc to call", "\"faulty_service.echo\""},
    {"args", NRPC_ARRAY, "[]", NULL},
    {"kwargs", NRPC_OBJECT, "{}", NULL},
    {"timeout", NRPC_NUMBER, "5", "seconds"},
    {NULL},
};

static const nrpc_rpc faulty_rpcs[] = {
    {"relay", relay, relay_params, "Calls another rpc and answers with its answer.", 0},
    {"no_reply", no_reply, NULL, "Returns without answering.", 0},
    {"fail", fail, NULL, "Fails with 500.", 0},
    {"echo", echo, NULL, "Echoes [args, kwargs].", NRPC_VARARGS | NRPC_VARKW},
    {NULL},
};

int
main(int argc, char **argv)
{
    static const nrpc_service_def def = {
        .name = "faulty_service", .version = "0.0.1", .rpcs = faulty_rpcs};
    return nrpc_service_main(&def, argc, argv);
}
