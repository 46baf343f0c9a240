/* fuzz_rest.c: REST route rules and request paths (framework/src/rest.c).
 * The input is "<rule>\n<method> <path>": the rule is parsed, and when it
 * parses the path is matched against it and, on a match, a Location is
 * filled from the matched parameters. Nothing may crash or leak, and a
 * match must only bind the rule's own {names}. */
#include "natsrpc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *nl, *sp, err[256], loc[512];
    nrpc_route route;
    json_t *params;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    nl = strchr(text, '\n');
    if (nl == NULL) {
        free(text);
        return 0;
    }
    *nl = '\0';
    if (nrpc_route_parse(text, &route, err, sizeof err) != 0) {
        free(text);
        return 0;
    }
    sp = strchr(nl + 1, ' ');
    params = json_object();
    if (sp) {
        *sp = '\0';
        if (nrpc_route_match(&route, nl + 1, sp + 1, strlen(sp + 1), params)) {
            const char *key;
            json_t *v;
            json_object_foreach(params, key, v) {
                char want[NRPC_MAX_ROUTE + 8];
                snprintf(want, sizeof want, "{%s}", key);
                if (strstr(route.path, want) == NULL || !json_is_string(v) ||
                    strchr(json_string_value(v), '/'))
                    abort();
            }
            if (route.location[0])
                (void)nrpc_route_location(&route, params, loc, sizeof loc);
        }
    }
    json_decref(params);
    free(text);
    return 0;
}
