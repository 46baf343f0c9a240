/* pg_probe_service.c: handlers that push natsrpc_pg's contract to its
 * edges, for the integration tests. Subjects: pg_probe.twice,
 * pg_probe.sleep. No migrations; DATABASE_URL names the database. */
#include <natsrpc.h>
#include <natsrpc_pg.h>

#include <stdio.h>
#include <stdlib.h>

static const nrpc_pg_statement statements[] = {
    {"one", "SELECT 1"},
    {"sleep", "SELECT pg_sleep($1::float8)"},
    {NULL},
};

static nrpc_pg *
pool(nrpc_call *call)
{
    return nrpc_service_data(nrpc_call_service(call));
}

/* Answers, then answers again and queries again from the same callback:
 * the second answer and the query are refused (logged), nothing else. */
static void
twice_done(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    nrpc_status again, query;

    if (nrpc_pg_failed(call, code, res, error))
        return;
    nrpc_reply_value(call, json_integer(1));
    again = nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "a second answer");
    query = nrpc_pg_query(pool(call), call, "one", 0, NULL, twice_done, NULL);
    nrpc_call_log(call, NRPC_LOG_INFO, "second answer: %s; query after the answer: %s",
                  nrpc_status_text(again), nrpc_status_text(query));
}

static void
twice(nrpc_call *call)
{
    if (nrpc_pg_query(pool(call), call, "one", 0, NULL, twice_done, NULL) != NRPC_OK)
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, NULL, "cannot query");
}

/* sleep(seconds): SELECT pg_sleep(seconds). Its closure is on the heap and
 * freed by the callback, which logs how it ended: a callback that never
 * ran leaks (LeakSanitizer says so) and logs nothing. */
static void
sleep_done(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    nrpc_call_log(call, NRPC_LOG_INFO, "sleep_done code=%d arg=%s", code, (char *)arg);
    free(arg);
    if (!nrpc_pg_failed(call, code, res, error))
        nrpc_reply(call, NULL, NULL);
}

static void
sleep_rpc(nrpc_call *call)
{
    char seconds[32], *arg = malloc(16);
    const char *params[1] = {seconds};

    snprintf(seconds, sizeof seconds, "%g", nrpc_arg_number(call, "seconds"));
    snprintf(arg, 16, "closure");
    if (nrpc_pg_query(pool(call), call, "sleep", 1, params, sleep_done, arg) != NRPC_OK) {
        free(arg);
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, NULL, "cannot query");
    }
}

static int
probe_start(nrpc_service *svc)
{
    nrpc_pg *pg = NULL;
    nrpc_pg_opts opts = {.statements = statements};

    if (nrpc_pg_start(&pg, svc, &opts) != NRPC_OK)
        return -1;
    nrpc_service_set_data(svc, pg);
    return 0;
}

static void
probe_stop(nrpc_service *svc)
{
    nrpc_pg_stop(nrpc_service_data(svc));
}

static const nrpc_param sleep_params[] = {
    {"seconds", NRPC_NUMBER, NULL, "how long the query sleeps"},
    {NULL},
};

static const nrpc_rpc probe_rpcs[] = {
    {"twice", twice, NULL, "Answers twice from a query callback.", 0},
    {"sleep", sleep_rpc, sleep_params, "Runs pg_sleep(seconds).", 0},
    {NULL},
};

int
main(int argc, char **argv)
{
    static const nrpc_service_def def = {.name = "pg_probe",
                                         .version = "0.0.1",
                                         .rpcs = probe_rpcs,
                                         .on_start = probe_start,
                                         .on_stop = probe_stop};
    return nrpc_service_main(&def, argc, argv);
}
