/* fuzz_idempotency.c: the Idempotency-Key parser on random header values.
 * Whatever comes in, a key that comes out is valid on the wire, within the
 * limit, and the same whether the value was quoted or not. */
#include <natsrpc.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[NRPC_IDEMPOTENCY_KEY_MAX + 1], again[NRPC_IDEMPOTENCY_KEY_MAX + 1];
    char *quoted;
    size_t len;

    if (nrpc_idempotency_key_parse((const char *)data, size, out) != 0)
        return 0;
    len = strlen(out);
    if (len == 0 || len > NRPC_IDEMPOTENCY_KEY_MAX || !nrpc_idempotency_key_valid(out))
        abort();
    /* Parsing a key again gives the key; quoting it changes nothing. */
    if (nrpc_idempotency_key_parse(out, len, again) != 0 || strcmp(out, again) != 0)
        abort();
    quoted = malloc(len + 3);
    if (quoted == NULL)
        return 0;
    quoted[0] = '"';
    memcpy(quoted + 1, out, len);
    quoted[len + 1] = '"';
    quoted[len + 2] = '\0';
    if (nrpc_idempotency_key_parse(quoted, len + 2, again) != 0 || strcmp(out, again) != 0)
        abort();
    free(quoted);
    return 0;
}
