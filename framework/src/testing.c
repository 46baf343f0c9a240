/* testing.c: nrpc_test_invoke, one call run in-process on a private loop
 * with no NATS, for unit tests of handlers. */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


nrpc_status
nrpc_test_invoke(const nrpc_service_def *def, const char *method, const char *body, int *code,
                 char **reply_body)
{
    nrpc_service *svc = NULL;
    uv_loop_t loop;
    nrpc_status st;
    rpc_entry *rpc = NULL;
    nrpc_call *call;
    size_t i;

    *code = 0;
    *reply_body = NULL;
    st = nrpc__service_new(&svc, def);
    if (st != NRPC_OK)
        return st;
    for (i = 0; i < svc->nrpcs; i++)
        if (strcmp(svc->rpcs[i].rpc->name, method) == 0)
            rpc = &svc->rpcs[i];
    if (rpc == NULL) {
        char m[256];
        snprintf(m, sizeof m, "no such rpc: %s.%s", def->name, method);
        *code = NRPC_CODE_NOT_FOUND;
        *reply_body = nrpc__error_text(NRPC_CODE_NOT_FOUND, NULL, m);
        nrpc__service_free(svc);
        return NRPC_OK;
    }
    if (nrpc__loop_setup(svc, &loop) != 0) {
        nrpc__service_free(svc);
        return NRPC_ERR_SYSTEM;
    }
    atomic_fetch_add(&svc->in_flight, 1);
    rpc->stats.in_flight++;
    call = nrpc__call_new(svc, rpc, NULL, INT64_MAX);
    if (call == NULL) {
        nrpc__loop_teardown(&loop);
        nrpc__service_free(svc);
        return NRPC_ERR_NOMEM;
    }
    nrpc_call_hold(call); /* ours: the answer must not free it under us */
    nrpc__call_run(call, body, body ? strlen(body) : 0);
    /* Deferred answers come from timers and other loop events; the loop's
     * own handles (wake, signals) are unreferenced so that an answer that
     * can never come ends the run instead of hanging. */
    uv_unref((uv_handle_t *)&svc->wake);
    uv_unref((uv_handle_t *)&svc->rebuild);
    uv_unref((uv_handle_t *)&svc->drain_timer);
    while (!svc->test_done && uv_run(&loop, UV_RUN_ONCE))
        ;
    if (!svc->test_done)
        nrpc__call_abandon(call, NRPC_CODE_INTERNAL, NULL,
                           "the handler deferred its answer but nothing is left to answer it");
    nrpc_call_release(call);
    /* Work still pending (a canceled timer) runs its callback and lets go. */
    uv_run(&loop, UV_RUN_DEFAULT);
    *code = svc->test_code;
    *reply_body = svc->test_body;
    svc->test_body = NULL;
    nrpc__loop_teardown(&loop);
    nrpc__service_free(svc);
    return NRPC_OK;
}
