/* idempotency.c: the Idempotency-Key of a request, read the one way by the
 * gateway (from HTTP) and by services (from the NATS header). */
#include "natsrpc.h"

#include <string.h>

static int
key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-_.:+/=~", c) != NULL);
}

int
nrpc_idempotency_key_valid(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (i = 0; s[i]; i++)
        if (i >= NRPC_IDEMPOTENCY_KEY_MAX || !key_char((unsigned char)s[i]))
            return 0;
    return 1;
}

int
nrpc_idempotency_key_parse(const char *in, size_t len, char out[NRPC_IDEMPOTENCY_KEY_MAX + 1])
{
    size_t i;

    if (in == NULL)
        return -1;
    /* The IETF draft spells the value as a quoted string ("8e03..."); most
     * APIs take it bare. Both mean the same key. */
    if (len >= 2 && in[0] == '"' && in[len - 1] == '"') {
        in++;
        len -= 2;
    }
    if (len == 0 || len > NRPC_IDEMPOTENCY_KEY_MAX)
        return -1;
    for (i = 0; i < len; i++)
        if (!key_char((unsigned char)in[i]))
            return -1;
    memcpy(out, in, len);
    out[len] = '\0';
    return 0;
}
