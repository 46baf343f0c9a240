/* fuzz_nkey.c: what NATS_NKEY_SEED and NATS_CREDS files hold, and NATS_URL
 * as logged. Any file text: the seed found is inside the text and on one
 * line; a seed that is accepted gives a 56-character public key "U..." of
 * the alphabet, and the same one every time. Any URL list: the redacted
 * copy is terminated, fits, and keeps nothing of what preceded an '@'. */
#include "internal.h"
#include "nkey.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_public(const char *pub)
{
    size_t i;

    if (strlen(pub) != NRPC_NKEY_PUBLIC_LEN || pub[0] != 'U')
        abort();
    for (i = 0; i < NRPC_NKEY_PUBLIC_LEN; i++)
        if (!((pub[i] >= 'A' && pub[i] <= 'Z') || (pub[i] >= '2' && pub[i] <= '7')))
            abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *seed;
    char pub[NRPC_NKEY_PUBLIC_LEN + 1], again[NRPC_NKEY_PUBLIC_LEN + 1], *url, out[64];
    size_t n = 0;

    seed = nrpc__nkey_find_seed(text, size, &n);
    if (seed) {
        if (seed < text || seed + n > text + size || n < 2 || memchr(seed, '\n', n))
            abort();
        if (nrpc__nkey_user_public(seed, n, pub) == NULL) {
            check_public(pub);
            if (nrpc__nkey_user_public(seed, n, again) != NULL || strcmp(pub, again) != 0)
                abort();
        }
    }
    /* The whole input as a seed too: most inputs never reach the decoder
     * through a line starting "SU". */
    if (nrpc__nkey_user_public(text, size, pub) == NULL)
        check_public(pub);

    url = malloc(size + 1);
    if (url == NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    nrpc__url_redact(url, out, sizeof out);
    if (strlen(out) >= sizeof out)
        abort();
    /* A single URL with an '@' and no ',': nothing before the last '@'
     * (after the scheme) survives, when the redacted copy fits. */
    if (strchr(url, ',') == NULL && strchr(url, '@') && strlen(url) + 4 < sizeof out &&
        strstr(out, "***@") == NULL)
        abort();
    free(url);
    return 0;
}
