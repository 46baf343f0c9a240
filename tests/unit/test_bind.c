/* test_bind.c: binding [args, kwargs] to declared parameters, every path. */
#include "natsrpc.h"
#include "check.h"

#include <stdlib.h>

static const nrpc_param hello[] = {
    {"first_name", NRPC_STRING, NULL, NULL},
    {"last_name", NRPC_STRING, "\"\"", NULL},
    {NULL},
};

static const nrpc_param typed[] = {
    {"n", NRPC_INTEGER, "1", NULL},   {"x", NRPC_NUMBER, "0.5", NULL},
    {"b", NRPC_BOOLEAN, "false", NULL}, {"l", NRPC_ARRAY, "[]", NULL},
    {"o", NRPC_OBJECT, "{}", NULL},   {"any", NRPC_ANY, "null", NULL},
    {"opt", NRPC_STRING, "null", NULL}, {NULL},
};

/* Binds body to params; returns the bound object as text or "ERR: ...". */
static char *
bind(const nrpc_param *params, unsigned flags, const char *body)
{
    json_t *a, *k, *bound, *va, *vk;
    char err[256], *out;

    if (nrpc_request_decode(body, strlen(body), &a, &k, err, sizeof err) != 0)
        goto fail;
    if (nrpc_bind(params, flags, a, k, &bound, &va, &vk, err, sizeof err) != 0) {
        json_decref(a);
        json_decref(k);
        goto fail;
    }
    json_decref(a);
    json_decref(k);
    /* Leftovers exist only when the flags ask for them. */
    CHECK((va != NULL) == !!(flags & NRPC_VARARGS));
    CHECK((vk != NULL) == !!(flags & NRPC_VARKW));
    if (va == NULL)
        va = json_array();
    if (vk == NULL)
        vk = json_object();
    {
        json_t *all = json_pack("{s:o, s:o, s:o}", "bound", bound, "args", va, "kwargs", vk);
        out = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(all);
    }
    return out;
fail:
    out = malloc(strlen(err) + 6);
    sprintf(out, "ERR: %s", err);
    return out;
}

static void
ok(const nrpc_param *p, unsigned flags, const char *body, const char *expected)
{
    char *got = bind(p, flags, body);
    CHECK_STR(got, expected);
    free(got);
}

static void
bad(const nrpc_param *p, unsigned flags, const char *body, const char *needle)
{
    char *got = bind(p, flags, body);
    CHECK(strncmp(got, "ERR: ", 5) == 0);
    CHECK_CONTAINS(got, needle);
    free(got);
}

#define BOB_ROSS "{\"args\":[],\"bound\":{\"first_name\":\"Bob\",\"last_name\":\"Ross\"},\"kwargs\":{}}"
#define BOB "{\"args\":[],\"bound\":{\"first_name\":\"Bob\",\"last_name\":\"\"},\"kwargs\":{}}"

int
main(void)
{
    /* Positionally, by name, mixed: the same binding. */
    ok(hello, 0, "[[\"Bob\", \"Ross\"]]", BOB_ROSS);
    ok(hello, 0, "[[], {\"first_name\": \"Bob\", \"last_name\": \"Ross\"}]", BOB_ROSS);
    ok(hello, 0, "[[\"Bob\"], {\"last_name\": \"Ross\"}]", BOB_ROSS);
    ok(hello, 0, "{\"last_name\": \"Ross\", \"first_name\": \"Bob\"}", BOB_ROSS);
    ok(hello, 0, "[[\"Bob\"]]", BOB);
    ok(hello, 0, "[[], {\"first_name\": \"Bob\"}]", BOB);

    /* Every way to get it wrong names the parameter. */
    bad(hello, 0, "[]", "missing required argument 'first_name'");
    bad(hello, 0, "", "'first_name'");
    bad(hello, 0, "[[], {\"last_name\": \"Ross\"}]", "'first_name'");
    bad(hello, 0, "[[\"Bob\"], {\"first_name\": \"Bob\"}]", "multiple values for argument 'first_name'");
    bad(hello, 0, "[[\"Bob\"], {\"middle\": \"X\"}]", "unexpected keyword argument 'middle'");
    bad(hello, 0, "[[\"a\", \"b\", \"c\"]]", "takes 2 positional arguments but 3 were given");
    bad(hello, 0, "[[42]]", "argument 'first_name' must be a string, not an integer");
    bad(hello, 0, "[[null]]", "argument 'first_name' must be a string, not null");
    bad(hello, 0, "[[\"Bob\", [\"R\"]]]", "argument 'last_name' must be a string, not an array");
    bad(NULL, 0, "[[1]]", "takes 0 positional arguments but 1 was given");

    /* Types: integers accept whole reals, numbers accept both, null only
     * where the default is null. */
    ok(typed, 0, "{\"n\": 3.0, \"x\": 2, \"any\": [1], \"opt\": null}",
       "{\"args\":[],\"bound\":{\"any\":[1],\"b\":false,\"l\":[],\"n\":3,\"o\":{},\"opt\":null,"
       "\"x\":2},\"kwargs\":{}}");
    bad(typed, 0, "{\"n\": 3.5}", "argument 'n' must be an integer, not a number");
    bad(typed, 0, "{\"n\": \"3\"}", "argument 'n' must be an integer, not a string");
    bad(typed, 0, "{\"x\": true}", "argument 'x' must be a number, not a boolean");
    bad(typed, 0, "{\"b\": 1}", "argument 'b' must be a boolean");
    bad(typed, 0, "{\"l\": {}}", "argument 'l' must be an array, not an object");
    bad(typed, 0, "{\"o\": []}", "argument 'o' must be an object, not an array");
    bad(typed, 0, "{\"n\": null}", "argument 'n' must be an integer, not null");
    bad(typed, 0, "{\"n\": 1e300}", "argument 'n' must be an integer");

    /* *args and **kwargs keep what is left over. */
    ok(NULL, NRPC_VARARGS | NRPC_VARKW, "[[\"websockets\"], {\"are\": \"awesome\"}]",
       "{\"args\":[\"websockets\"],\"bound\":{},\"kwargs\":{\"are\":\"awesome\"}}");
    ok(hello, NRPC_VARARGS, "[[\"Bob\", \"Ross\", 3]]",
       "{\"args\":[3],\"bound\":{\"first_name\":\"Bob\",\"last_name\":\"Ross\"},\"kwargs\":{}}");
    bad(hello, NRPC_VARARGS, "[[\"Bob\"], {\"x\": 1}]", "unexpected keyword argument 'x'");

    /* A default that is not JSON is a declaration error, reported. */
    {
        static const nrpc_param broken[] = {{"a", NRPC_STRING, "not json", NULL}, {NULL}};
        bad(broken, 0, "[]", "default of 'a' is not JSON");
    }
    return check_done("test_bind");
}
