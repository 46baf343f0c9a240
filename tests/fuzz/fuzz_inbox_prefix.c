/* fuzz_inbox_prefix.c: NATS_INBOX_PREFIX (framework/src/inbox.c) on random
 * values. A prefix that is accepted is one nats-server and nats.c take as
 * it is: under _INBOX, no wildcard, space, '$' or control byte, no empty
 * token, within the limit; an inbox made under it is the prefix, a dot and
 * the random digits, and fits NRPC_INBOX_SIZE. A refused one always says
 * why, naming the variable, in printable ASCII. */
#include <natsrpc.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512], inbox[NRPC_INBOX_SIZE], *p;
    size_t n, i;

    if (size > 4096)
        return 0;
    p = malloc(size + 1);
    if (p == NULL)
        return 0;
    memcpy(p, data, size);
    p[size] = '\0';
    n = strlen(p); /* the environment stops at the first NUL too */
    if (nrpc_inbox_prefix_check(p, why, sizeof why) != 0) {
        if (strncmp(why, "NATS_INBOX_PREFIX ", 18) != 0)
            abort();
        for (i = 0; why[i]; i++)
            if ((unsigned char)why[i] < 32 || (unsigned char)why[i] >= 127)
                abort();
        setenv("NATS_INBOX_PREFIX", p, 1);
        if (n > 0 && (nrpc_inbox_prefix() != NULL || nrpc_inbox_new(inbox, sizeof inbox) == NRPC_OK))
            abort();
        free(p);
        return 0;
    }
    if (why[0] != '\0' || n > NRPC_INBOX_PREFIX_MAX)
        abort();
    if (n > 0) {
        if (strncmp(p, "_INBOX", 6) != 0 || (p[6] != '\0' && p[6] != '.'))
            abort();
        for (i = 0; i < n; i++) {
            if (p[i] == '.') {
                if (i == 0 || p[i - 1] == '.' || p[i + 1] == '\0')
                    abort();
            } else if (!token_char((unsigned char)p[i])) {
                abort();
            }
        }
    }
    setenv("NATS_INBOX_PREFIX", p, 1);
    if (nrpc_inbox_new(inbox, sizeof inbox) != NRPC_OK)
        abort();
    if (n == 0) {
        if (strncmp(inbox, "_INBOX.", 7) != 0)
            abort();
    } else if (strncmp(inbox, p, n) != 0 || inbox[n] != '.') {
        abort();
    }
    if (strlen(inbox) != strlen(nrpc_inbox_prefix()) + 1 + NRPC_INBOX_RANDOM)
        abort();
    free(p);
    return 0;
}
