/* fuzz_wamp.c: WAMP message decoding on random input. Whatever decodes
 * must be well-formed by the shapes table (ids in [1, 2^53], Arguments a
 * list, ArgumentsKw a dict only after Arguments), and what the router
 * would build from it must encode and decode again. */
#include "ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
roundtrip(char *text, int type)
{
    char err[256];
    wamp_msg m;

    if (text == NULL)
        return; /* only when out of memory */
    if (wamp_decode(text, strlen(text), &m, err, sizeof err) != 0 || m.type != type)
        abort();
    wamp_msg_free(&m);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    wamp_msg m;
    int i;

    if (wamp_decode((const char *)data, size, &m, err, sizeof err) != 0) {
        if (m.root != NULL || err[0] == '\0')
            abort();
        return 0;
    }
    if (wamp_type_name(m.type) == NULL || !json_is_array(m.root))
        abort();
    for (i = 0; i < 2; i++)
        if (m.id[i] < 0 || m.id[i] > WAMP_MAX_ID)
            abort();
    if (m.args && !json_is_array(m.args))
        abort();
    if (m.kwargs && (!json_is_object(m.kwargs) || m.args == NULL))
        abort();
    if (m.uri && *m.uri == '\0')
        abort();
    if (m.type == WAMP_ERROR && wamp_type_name(m.req_type) == NULL)
        abort();

    roundtrip(wamp_encode_event(m.id[0] ? m.id[0] : 1, 1, m.uri, json_deep_copy(m.args),
                                json_deep_copy(m.kwargs)),
              WAMP_EVENT);
    roundtrip(wamp_encode_result(1, json_deep_copy(m.args), json_deep_copy(m.kwargs)), WAMP_RESULT);
    if (m.uri)
        roundtrip(wamp_encode_error(WAMP_CALL, 1, m.uri, json_deep_copy(m.args),
                                    json_deep_copy(m.kwargs)),
                  WAMP_ERROR);
    wamp_msg_free(&m);
    return 0;
}
