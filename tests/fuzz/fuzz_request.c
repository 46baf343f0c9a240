/* fuzz_request.c: the call convention on random request bodies.
 * nrpc_request_decode must accept or refuse any bytes cleanly; what it
 * accepts must bind (or be refused with a message) against hello's
 * parameters, and must survive an encode/decode round trip. */
#include <natsrpc.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* greeting_service.hello's parameters. */
static const nrpc_param hello_params[] = {
    {"first_name", NRPC_STRING, NULL, "who to greet"},
    {"last_name", NRPC_STRING, "\"\"", "family name, if any"},
    {NULL, 0, NULL, NULL},
};

static void
bind_once(json_t *args, json_t *kwargs, unsigned flags)
{
    json_t *bound = NULL, *varargs = NULL, *varkw = NULL;
    char err[256] = "";

    if (nrpc_bind(hello_params, flags, args, kwargs, &bound, &varargs, &varkw, err, sizeof err) ==
        0) {
        /* Bound means checked: both names present, both strings. */
        if (!json_is_object(bound) || !json_is_string(json_object_get(bound, "first_name")) ||
            !json_is_string(json_object_get(bound, "last_name")))
            abort();
        /* Extras: kept only when the flags allow them (NULL or empty
         * otherwise). */
        if (varargs != NULL && !json_is_array(varargs))
            abort();
        if (varkw != NULL && !json_is_object(varkw))
            abort();
        if (!(flags & NRPC_VARARGS) && json_array_size(varargs) != 0)
            abort();
        if (!(flags & NRPC_VARKW) && json_object_size(varkw) != 0)
            abort();
        json_decref(bound);
        json_decref(varargs);
        json_decref(varkw);
    } else if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL) {
        abort(); /* a refusal always says why */
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *args = NULL, *kwargs = NULL, *args2 = NULL, *kwargs2 = NULL;
    char err[256] = "";
    char *text;

    if (nrpc_request_decode((const char *)data, size, &args, &kwargs, err, sizeof err) != 0) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    if (!json_is_array(args) || !json_is_object(kwargs))
        abort();

    bind_once(args, kwargs, 0);
    bind_once(args, kwargs, NRPC_VARARGS | NRPC_VARKW);

    /* Round trip: what we encode, we decode to the same values. */
    json_incref(args);
    json_incref(kwargs);
    text = nrpc_reply_encode(args, kwargs);
    if (text == NULL)
        abort();
    if (nrpc_request_decode(text, strlen(text), &args2, &kwargs2, err, sizeof err) != 0 ||
        !json_equal(args, args2) || !json_equal(kwargs, kwargs2))
        abort();
    free(text);
    json_decref(args2);
    json_decref(kwargs2);
    json_decref(args);
    json_decref(kwargs);
    return 0;
}
