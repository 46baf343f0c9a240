/* subject.c: which subjects a gateway may forward as rpc calls. */
#include "internal.h"

#include <string.h>

static int
subject_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

int
nrpc_subject_is_rpc(const char *s, size_t len)
{
    size_t i, dot = 0, dots = 0;

    if (s == NULL || len == 0)
        return 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            dots++;
            dot = i;
        } else if (!subject_token_char((unsigned char)s[i])) {
            return 0; /* wildcards, '$', spaces, control bytes... */
        }
    }
    if (dots != 1 || dot == 0 || dot == len - 1)
        return 0;
    /* Replies travel on _INBOX.<...>: forwarding there would let a caller
     * inject answers into other callers' requests. */
    if (dot == 6 && memcmp(s, "_INBOX", 6) == 0)
        return 0;
    return 1;
}
