/* test_gw_route.c: the gateway's path routing and timeout parsing.
 * Includes gateway/bridge/route.c so its functions are tested as compiled there. */
#include "../../gateway/bridge/route.c"

#include "check.h"

static gw_route_kind
route(const char *path, const char **subject)
{
    size_t len = 0;
    gw_route_kind k = gw_route_match(path, subject, &len);

    if (*subject)
        CHECK_INT(len, strlen(*subject));
    return k;
}

static void
test_routes(void)
{
    const char *s = NULL;

    CHECK_INT(route("/greeting_service.hello", &s), GW_ROUTE_RPC);
    CHECK_STR(s, "greeting_service.hello");
    CHECK_INT(route("/a-b.C_9", &s), GW_ROUTE_RPC);
    CHECK_STR(s, "a-b.C_9");

    CHECK_INT(route("/healthz", &s), GW_ROUTE_HEALTHZ);
    CHECK(s == NULL);

    /* Not rpc-shaped at all: 404 for GET, 400 for POST. */
    CHECK_INT(route("/", &s), GW_ROUTE_NOT_FOUND);
    CHECK_INT(route("", &s), GW_ROUTE_NOT_FOUND);
    CHECK_INT(route("greeting_service.hello", &s), GW_ROUTE_NOT_FOUND);
    CHECK_INT(route("/a/b", &s), GW_ROUTE_NOT_FOUND);
    CHECK_INT(route("/a.b/", &s), GW_ROUTE_NOT_FOUND);
    CHECK_INT(route("//a.b", &s), GW_ROUTE_NOT_FOUND);
    CHECK_INT(gw_route_match(NULL, &s, &(size_t){0}), GW_ROUTE_NOT_FOUND);

    /* One segment that is not a forwardable subject: never published. */
    static const char *bad[] = {
        "/a.*",     "/*.b", "/a.>",      "/>",          "/$SYS.x",  "/a.$b",  "/_INBOX.x",
        "/a..b",    "/.a",  "/a.",       "/abc",        "/a.b.c",   "/a b.c", "/a.b\t",
        "/a%2Ab.c", "/é.x", "/healthz.", "/x.healthz?", "/a.b\x01", NULL,
    };
    for (const char **p = bad; *p; p++) {
        gw_route_kind k = route(*p, &s);
        if (k != GW_ROUTE_BAD_RPC)
            fprintf(stderr, "path \"%s\" routed to %d\n", *p, (int)k);
        CHECK_INT(k, GW_ROUTE_BAD_RPC);
    }
    /* _INBOX only as the whole first token. */
    CHECK_INT(route("/_INBOXx.y", &s), GW_ROUTE_RPC);

    /* NRPC_MAX_SUBJECT bytes at most: nats-server drops a connection whose
     * protocol line passes 4 KiB. */
    {
        char path[NRPC_MAX_SUBJECT + 3];
        memset(path, 'a', sizeof path);
        path[0] = '/';
        path[NRPC_MAX_SUBJECT - 1] = '.';
        path[NRPC_MAX_SUBJECT + 1] = '\0';
        CHECK_INT(route(path, &s), GW_ROUTE_RPC);
        path[NRPC_MAX_SUBJECT + 1] = 'b';
        path[NRPC_MAX_SUBJECT + 2] = '\0';
        CHECK_INT(route(path, &s), GW_ROUTE_BAD_RPC);
        CHECK_INT(strlen(s), NRPC_MAX_SUBJECT + 1);
    }
}

static int64_t
tmo(const char *text)
{
    int64_t ms = -42;
    if (gw_parse_timeout(text, GW_MAX_TIMEOUT_MS, &ms) != 0)
        return -1;
    return ms;
}

static void
test_timeouts(void)
{
    CHECK_INT(tmo("1"), 1000);
    CHECK_INT(tmo("60"), 60000);
    CHECK_INT(tmo("0.25"), 250);
    CHECK_INT(tmo(".5"), 500);
    CHECK_INT(tmo("1e1"), 10000);
    CHECK_INT(tmo("2.5E-1"), 250);
    CHECK_INT(tmo("0.0001"), 1); /* under a millisecond: rounds up */
    CHECK_INT(tmo("0.0015"), 2); /* never shorter than asked */
    CHECK_INT(tmo("300"), 300000);
    CHECK_INT(tmo("301"), 300000); /* capped */
    CHECK_INT(tmo("1e300"), 300000);

    static const char *bad[] = {"",    "0",   "0.0",  "-1", "+1", " 1",   "1 ",     "1s", "abc",
                                "nan", "inf", "0x10", "1e", ".",  "1..2", "1e-400", NULL};
    for (const char **p = bad; *p; p++) {
        if (tmo(*p) != -1)
            fprintf(stderr, "timeout \"%s\" accepted as %lld\n", *p, (long long)tmo(*p));
        CHECK_INT(tmo(*p), -1);
    }
    CHECK_INT(gw_parse_timeout(NULL, 1000, &(int64_t){0}), -1);

    int64_t ms = 0;
    CHECK_INT(gw_parse_timeout("5", 2000, &ms), 0);
    CHECK_INT(ms, 2000); /* the caller's cap */
}

int
main(void)
{
    test_routes();
    test_timeouts();
    return check_done("gw_route");
}
