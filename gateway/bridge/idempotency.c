/* idempotency.c: the Idempotency-Key header of an HTTP request, checked
 * before the request goes to NATS (nrpc_idempotency_key_parse says what a
 * key may be). */
#include "bridge.h"

#include <microhttpd.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *first;
    size_t first_len;
    int count;
} key_seen;

static enum MHD_Result
key_count(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
          const char *value, size_t value_size)
{
    key_seen *s = cls;

    if (key && strcasecmp(key, NRPC_HDR_IDEMPOTENCY_KEY) == 0) {
        if (s->count++ == 0) {
            s->first = value ? value : "";
            s->first_len = value ? value_size : 0;
        }
    }
    return MHD_YES;
}

int
gw_idempotency_key(struct MHD_Connection *conn, char out[NRPC_IDEMPOTENCY_KEY_MAX + 1], char *err,
                   size_t errlen)
{
    key_seen s = {NULL, 0, 0};

    out[0] = '\0';
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, key_count, &s);
    if (s.count == 0)
        return 0;
    /* Two keys for one request: which operation is it? */
    if (s.count > 1) {
        snprintf(err, errlen, "%s given %d times; send it once", NRPC_HDR_IDEMPOTENCY_KEY,
                 s.count);
        return -1;
    }
    if (nrpc_idempotency_key_parse(s.first, s.first_len, out) != 0) {
        snprintf(err, errlen,
                 "%s must be 1 to %d characters of letters, digits and -_.:+/=~ (bare or "
                 "quoted), got %zu bytes",
                 NRPC_HDR_IDEMPOTENCY_KEY, NRPC_IDEMPOTENCY_KEY_MAX, s.first_len);
        return -1;
    }
    return 1;
}
