/* fuzz_marker.c: the sequence of a subscription marker (wamp_confirm.c),
 * which anything on NATS could publish to the gateway's marker subject. A
 * value is returned only for the gateway's own form: printing it again
 * gives the input back, byte for byte. */
#include "ws.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t v = wamp_marker_parse((const char *)data, size);
    char text[32];

    if (v == 0)
        return 0;
    if (v > INT64_MAX)
        abort();
    snprintf(text, sizeof text, "%" PRIu64, v);
    if (strlen(text) != size || memcmp(text, data, size) != 0)
        abort();
    return 0;
}
