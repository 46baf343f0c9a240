/* faulty_service.c: a service whose handlers misbehave on purpose, so the
 * integration tests can see that failures are answered and never take the
 * process down. Subjects: faulty_service.no_reply, faulty_service.fail,
 * faulty_service.echo. */
#include <natsrpc.h>

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

static const nrpc_rpc faulty_rpcs[] = {
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
