/* fuzz_route.c: the gateway's path routing and timeout parsing on random
 * input. Whatever the path, only a two-token subject of letters, digits, '_'
 * and '-' may come out as an rpc; a parsed timeout is always in [1, cap]. */
#include "bridge/bridge.h"
#include "ws/ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_rpc(const char *path, const char *subject, size_t len)
{
    size_t i, dots = 0;

    if (subject != path + 1 || len != strlen(path + 1) || len < 3)
        abort();
    for (i = 0; i < len; i++) {
        char c = subject[i];
        if (c == '.')
            dots++;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-'))
            abort(); /* '*', '>', '$', '/', spaces, control bytes... */
    }
    if (dots != 1 || subject[0] == '.' || subject[len - 1] == '.')
        abort();
    if (len >= 7 && memcmp(subject, "_INBOX.", 7) == 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    const char *subject = NULL;
    size_t len = 0;
    int64_t ms = 0, cap;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* The same bytes as an Origin header: the gateway's own host and a
     * listed origin are the only non-"*" ways in. */
    if (gw_origin_allowed(text, "127.0.0.1:5000", "https://a.example") &&
        strcasecmp(text, "https://a.example") != 0 && strstr(text, "://") == NULL)
        abort();
    switch (gw_route_match(text, &subject, &len)) {
    case GW_ROUTE_RPC: check_rpc(text, subject, len); break;
    case GW_ROUTE_BAD_RPC:
        if (subject != text + 1 || nrpc_subject_is_rpc(subject, len))
            abort();
        break;
    case GW_ROUTE_HEALTHZ:
        if (strcmp(text, "/healthz") != 0)
            abort();
        break;
    case GW_ROUTE_NOT_FOUND:
        if (subject != NULL || len != 0)
            abort();
        break;
    }

    /* The same bytes as a timeout, against two caps. */
    for (cap = 1; cap <= GW_MAX_TIMEOUT_MS; cap += GW_MAX_TIMEOUT_MS - 1) {
        ms = -1;
        if (gw_parse_timeout(text, cap, &ms) == 0 && (ms < 1 || ms > cap))
            abort();
    }
    free(text);
    return 0;
}
