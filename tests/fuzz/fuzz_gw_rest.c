/* fuzz_gw_rest.c: a request against the gateway's REST table (gateway/
 * rest.c): "METHOD /path?query\nbody". Matching, typed binding of path and
 * query parameters, and the request body must never crash or leak, and a
 * request that matches always gives a [[], {kwargs}] body or a message. */
#include "rest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *INFOS =
    "[{\"name\": \"s\", \"endpoints\": ["
    "{\"name\": \"list\", \"subject\": \"s.list\", \"metadata\": {\"params\": "
    "\"[{\\\"name\\\":\\\"n\\\",\\\"type\\\":\\\"integer\\\"},{\\\"name\\\":\\\"f\\\",\\\"type\\\":"
    "\\\"number\\\"},{\\\"name\\\":\\\"b\\\",\\\"type\\\":\\\"boolean\\\"},{\\\"name\\\":\\\"o\\\","
    "\\\"type\\\":\\\"object\\\"},{\\\"name\\\":\\\"a\\\",\\\"type\\\":\\\"any\\\"}]\", \"http\": "
    "\"[\\\"GET /x\\\", \\\"POST /x/{n}/y/{a} 201 /x/{n}\\\"]\"}}]}]";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gw_rest *t;
    char *text, *nl, *sp, *q, allow[64], err[256], *out = NULL;
    gw_rest_call c;
    gw_rest_result res;

    if (t == NULL) {
        json_t *infos = json_loads(INFOS, 0, NULL);
        t = gw_rest_build(infos, NULL);
        json_decref(infos);
    }
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    nl = strchr(text, '\n');
    sp = strchr(text, ' ');
    if (nl == NULL || sp == NULL || sp > nl) {
        free(text);
        return 0;
    }
    *nl = *sp = '\0';
    q = strchr(sp + 1, '?');
    if (q)
        *q++ = '\0';
    err[0] = '\0';
    res = gw_rest_match(t, text, sp + 1, strlen(sp + 1), q, &c, allow, sizeof allow, err,
                        sizeof err);
    if (res == GW_REST_BAD) {
        /* the message is sent in a JSON error body: it must be text */
        json_t *msg = json_string(err);
        if (msg == NULL || err[0] == '\0')
            abort();
        json_decref(msg);
    }
    if (res == GW_REST_MATCH) {
        if (gw_rest_request(&c, nl + 1, size - (size_t)(nl + 1 - text), &out, err, sizeof err) ==
            0) {
            if (out == NULL || strncmp(out, "[[], {", 6) != 0)
                abort();
            free(out);
        } else {
            json_t *msg = json_string(err);
            if (msg == NULL)
                abort();
            json_decref(msg);
        }
        gw_rest_call_done(&c);
    }
    free(text);
    return 0;
}
