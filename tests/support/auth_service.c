/* auth_service.c: a delegated authorizer for the gateway's tests.
 * auth_service.authorize([], {authorization}) decides from the credential:
 *   "Bearer ok-<sub>[-<scope>...]"  principal {sub, scopes}
 *   "Bearer no-..."                 null: refused
 *   "Bearer fail-..."               an error 500: the gateway fails closed
 *   "Bearer slow-..."               no answer for 30 s: it fails closed too
 * and auth_service.count answers how often authorize ran (the gateway's
 * cache is seen in it). */
#include <natsrpc.h>

#include <stdlib.h>
#include <string.h>

static long calls;

static void
answer_later(nrpc_call *call, int code, void *arg)
{
    nrpc_reply(call, json_pack("[n]"), NULL);
}

static void
authorize(nrpc_call *call)
{
    const char *h = nrpc_arg_string(call, "authorization");
    const char *t = strncmp(h, "Bearer ", 7) == 0 ? h + 7 : "";

    calls++;
    if (strncmp(t, "ok-", 3) == 0) {
        char *copy = strdup(t + 3), *save = NULL, *tok;
        json_t *scopes = json_array();
        const char *sub = strtok_r(copy, "-", &save);
        json_t *who = json_pack("{s:s}", "sub", sub ? sub : "?");
        while ((tok = strtok_r(NULL, "-", &save)) != NULL)
            json_array_append_new(scopes, json_string(tok));
        json_object_set_new(who, "scopes", scopes);
        free(copy);
        nrpc_reply(call, json_pack("[o]", who), NULL);
    } else if (strncmp(t, "fail-", 5) == 0) {
        nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "the authorizer broke");
    } else if (strncmp(t, "slow-", 5) == 0) {
        if (nrpc_call_after(call, 30000, answer_later, NULL) != NRPC_OK)
            nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "no timer");
    } else {
        nrpc_reply(call, json_pack("[n]"), NULL);
    }
}

static void
count(nrpc_call *call)
{
    nrpc_reply(call, json_pack("[I]", (json_int_t)calls), NULL);
}

static const nrpc_param authorize_params[] = {
    {"authorization", NRPC_STRING, NULL, "the caller's Authorization header"},
    {NULL},
};

static const nrpc_rpc rpcs[] = {
    {"authorize", authorize, authorize_params, "Decides who a credential is.", 0},
    {"count", count, NULL, "How often authorize ran.", 0, NULL, NRPC_PUBLIC},
    {NULL},
};

int
main(int argc, char **argv)
{
    static const nrpc_service_def def = {.name = "auth_service", .version = "0.0.1", .rpcs = rpcs};
    return nrpc_service_main(&def, argc, argv);
}
