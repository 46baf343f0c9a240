/* greeting.c: greeting_service.
 * Subjects: greeting_service.hello, greeting_service.hello_sleep. */
#include <natsrpc.h>

#include "greeting.h"

/* hello(first_name, last_name = ""): arguments arrive bound and checked. */
static void
hello(nrpc_call *call)
{
    const char *first = nrpc_arg_string(call, "first_name");
    const char *last = nrpc_arg_string(call, "last_name");

    nrpc_reply_value(call, *last ? json_sprintf("Hello, %s %s", first, last)
                                 : json_sprintf("Hello, %s", first));
}

/* code is NRPC_CODE_CANCELED when the call was answered meanwhile (its
 * caller's deadline, the drain): then there is nobody to greet. */
static void
hello_sleep_done(nrpc_call *call, int code, void *arg)
{
    (void)arg;
    if (code == 0)
        nrpc_reply_value(call, json_sprintf("Hello, %s", nrpc_arg_string(call, "name")));
}

/* hello_sleep(name, seconds = 10): answers later without holding a thread,
 * the C spelling of `await asyncio.sleep(seconds)`. */
static void
hello_sleep(nrpc_call *call)
{
    double seconds = nrpc_arg_number(call, "seconds");

    if (!(seconds >= 0 && seconds <= 60)) {
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL,
                  "argument 'seconds' must be between 0 and 60, not %g", seconds);
        return;
    }
    nrpc_call_after(call, (uint64_t)(seconds * 1000.0 + 0.5), hello_sleep_done, NULL);
}

static const nrpc_param hello_params[] = {
    {"first_name", NRPC_STRING, NULL, "who to greet", "\"Bob\""},
    {"last_name", NRPC_STRING, "\"\"", "family name, if any", "\"Ross\""},
    {NULL},
};

static const nrpc_param hello_sleep_params[] = {
    {"name", NRPC_STRING, NULL, "who to greet", "\"Sleepy Bob\""},
    {"seconds", NRPC_NUMBER, "10", "how long to wait first, 0 to 60", "1"},
    {NULL},
};

static const nrpc_rpc greeting_rpcs[] = {
    {"hello", hello, hello_params, "Greets a person by name.", 0, NULL, NRPC_PUBLIC},
    {"hello_sleep", hello_sleep, hello_sleep_params, "Greets after a delay.", 0, NULL, NRPC_PUBLIC},
    {NULL},
};

const nrpc_service_def greeting_service = {
    .name = "greeting_service",
    .version = "1.0.0",
    .description = "Says hello, at once or after a while.",
    .rpcs = greeting_rpcs,
};
