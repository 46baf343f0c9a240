/* rest_probe_service.c: a service whose rpcs declare REST routes, for the
 * gateway's REST tests: a route that appears when it starts, one that
 * conflicts with thing_service's GET /things, path parameters of every
 * kind.
 *
 *   REST_PROBE_SERVICE   its name (default widget_service): two instances
 *                        under different names declare the same routes
 *
 * rpcs and routes:
 *   get_widget(n: integer, verbose = false)   GET /widgets/{n}
 *                                             -> {"n", "verbose", "by"}
 *   make_widget(n: integer, tags = null)      POST /widgets 201 /widgets/{n}
 *                                             -> {"n", "tags", "by"}
 *   drop_widget(n: integer)                   DELETE /widgets/{n} 204
 *   lost_widget(n: integer)                   GET /widgets/{n}/lost: 404
 *   echo(text: string, extra...)              GET /echo/{text}, POST /echo/{text}
 *                                             -> [[text], varkw] as is
 *   list_things()                             GET /things (thing_service's)
 *   pair(a, b)                                GET /pairs/{a}/{b} -> [a, b]
 *   slow(ms: integer)                         GET /slow/{ms}: answers after ms
 */
#include <natsrpc.h>

#include <stdlib.h>

static const char *
self_name(nrpc_call *call)
{
    return nrpc_service_def_of(nrpc_call_service(call))->name;
}

static void
get_widget(nrpc_call *call)
{
    nrpc_reply(call,
               json_pack("[{s:I, s:b, s:s}]", "n", (json_int_t)nrpc_arg_int(call, "n"), "verbose",
                         nrpc_arg_bool(call, "verbose"), "by", self_name(call)),
               NULL);
}

static void
make_widget(nrpc_call *call)
{
    nrpc_reply(call,
               json_pack("[{s:I, s:O, s:s}]", "n", (json_int_t)nrpc_arg_int(call, "n"), "tags",
                         nrpc_arg(call, "tags"), "by", self_name(call)),
               NULL);
}

static void
drop_widget(nrpc_call *call)
{
    nrpc_reply(call, json_pack("[{s:I}]", "n", (json_int_t)nrpc_arg_int(call, "n")), NULL);
}

static void
lost_widget(nrpc_call *call)
{
    nrpc_fail(call, NRPC_CODE_NOT_FOUND, "not_found", "no widget %lld",
              (long long)nrpc_arg_int(call, "n"));
}

static void
echo(nrpc_call *call)
{
    nrpc_reply(call, json_pack("[s]", nrpc_arg_string(call, "text")),
               json_deep_copy(nrpc_call_varkw(call)));
}

static void
list_things(nrpc_call *call)
{
    nrpc_reply(call, json_pack("[[s]]", self_name(call)), NULL);
}

static void
pair(nrpc_call *call)
{
    nrpc_reply(call, json_pack("[s, s]", nrpc_arg_string(call, "a"), nrpc_arg_string(call, "b")),
               NULL);
}

static void
slow_done(nrpc_call *call, int code, void *arg)
{
    (void)arg;
    if (code == 0)
        nrpc_reply(call, json_pack("[I]", (json_int_t)nrpc_arg_int(call, "ms")), NULL);
}

static void
slow(nrpc_call *call)
{
    nrpc_call_after(call, (uint64_t)nrpc_arg_int(call, "ms"), slow_done, NULL);
}

static const nrpc_param widget_params[] = {
    {"n", NRPC_INTEGER, NULL, "the widget's number", "7"},
    {"verbose", NRPC_BOOLEAN, "false", "more words"},
    {NULL},
};
static const nrpc_param make_params[] = {
    {"n", NRPC_INTEGER, NULL, "the widget's number", "7"},
    {"tags", NRPC_ARRAY, "null", "labels", "[\"red\"]"},
    {NULL},
};
static const nrpc_param n_params[] = {{"n", NRPC_INTEGER, NULL, "the widget's number", "7"},
                                      {NULL}};
static const nrpc_param echo_params[] = {{"text", NRPC_STRING, NULL, "echoed", "\"hi\""}, {NULL}};
static const nrpc_param pair_params[] = {{"a", NRPC_STRING, NULL, NULL, "\"x\""},
                                         {"b", NRPC_STRING, NULL, NULL, "\"y\""},
                                         {NULL}};

static const nrpc_param slow_params[] = {{"ms", NRPC_INTEGER, NULL, NULL, "10"}, {NULL}};

static const char *const get_routes[] = {"GET /widgets/{n}", NULL};
static const char *const make_routes[] = {"POST /widgets 201 /widgets/{n}", NULL};
static const char *const drop_routes[] = {"DELETE /widgets/{n} 204", NULL};
static const char *const lost_routes[] = {"GET /widgets/{n}/lost", NULL};
static const char *const echo_routes[] = {"GET /echo/{text}", "POST /echo/{text}", NULL};
static const char *const list_routes[] = {"GET /things", NULL};
static const char *const pair_routes[] = {"GET /pairs/{a}/{b}", NULL};
static const char *const slow_routes[] = {"GET /slow/{ms}", NULL};

static const nrpc_rpc rpcs[] = {
    {"get_widget", get_widget, widget_params, "Returns a widget.", 0, get_routes},
    {"make_widget", make_widget, make_params, "Makes a widget.", 0, make_routes},
    {"drop_widget", drop_widget, n_params, "Drops a widget.", 0, drop_routes},
    {"lost_widget", lost_widget, n_params, "Never finds the widget.", 0, lost_routes},
    {"echo", echo, echo_params, "Echoes text and extra keywords.", NRPC_VARKW, echo_routes},
    {"list_things", list_things, NULL, "Declares thing_service's GET /things.", 0, list_routes},
    {"pair", pair, pair_params, "Two path parameters.", 0, pair_routes},
    {"slow", slow, slow_params, "Answers after ms milliseconds.", 0, slow_routes},
    {NULL},
};

int
main(int argc, char **argv)
{
    const char *name = getenv("REST_PROBE_SERVICE");
    nrpc_service_def def = {
        .name = name && *name ? name : "widget_service",
        .version = "1.0.0",
        .description = "Declares REST routes for the gateway's tests.",
        .rpcs = rpcs,
    };
    return nrpc_service_main(&def, argc, argv);
}
