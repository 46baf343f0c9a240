/* principal_service.c: rpcs that show what the gateway let through and who
 * the caller is (nrpc_call_principal), for the auth tests. Subjects:
 *   principal_service.whoami  any authenticated caller: [[principal], {}]
 *   principal_service.open    public: [[principal or null], {}]
 *   principal_service.admin   needs the scope "admin": [["yes"], {}]
 *   principal_service.both    needs "a" and "b": [["yes"], {}]
 */
#include <natsrpc.h>

static void
whoami(nrpc_call *call)
{
    json_t *p = nrpc_call_principal(call);
    nrpc_reply(call, json_pack("[O]", p ? p : json_null()),
               json_pack("{s:b}", "admin", nrpc_call_has_scope(call, "admin")));
}

static void
yes(nrpc_call *call)
{
    nrpc_reply(call, json_pack("[s]", "yes"), NULL);
}

static const nrpc_rpc rpcs[] = {
    {"whoami", whoami, NULL, "Answers the caller's principal.", 0, NULL, NRPC_AUTHENTICATED},
    {"open", whoami, NULL, "Answers the caller's principal, or null.", 0, NULL, NRPC_PUBLIC},
    {"admin", yes, NULL, "Answers yes to admins.", 0, NULL, "admin"},
    {"both", yes, NULL, "Needs two scopes.", 0, NULL, "a b"},
    {NULL},
};

int
main(int argc, char **argv)
{
    static const nrpc_service_def def = {
        .name = "principal_service", .version = "0.0.1", .rpcs = rpcs};
    return nrpc_service_main(&def, argc, argv);
}
