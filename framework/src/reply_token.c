/* reply_token.c: the token at the end of a reply subject, "<inbox>.<token>",
 * sealed (see internal.h). A caller numbers its calls (the table key); the
 * subject carries AES-128 of (number, zeros) under a key that never leaves
 * the process, as 32 hex digits. A reply on any other token is not ours:
 * whoever may publish on the caller's inbox (every service may, to answer)
 * cannot make a token for a call it never received, nor read the number of
 * the next one off the tokens it saw. */
#include "internal.h"

#include <stdint.h>
#include <string.h>

int
nrpc__seal_init(nrpc__seal *s)
{
    uint8_t key[AES128_KEY_SIZE];

    if (nrpc__random_secret(key, sizeof key) != 0)
        return -1;
    aes128_set_encrypt_key(&s->enc, key);
    aes128_invert_key(&s->dec, &s->enc);
    memset(key, 0, sizeof key);
    return 0;
}

void
nrpc__seal_token(const nrpc__seal *s, uint64_t n, char out[NRPC__SEALED_LEN + 1])
{
    uint8_t block[AES_BLOCK_SIZE] = {0}, sealed[AES_BLOCK_SIZE];
    size_t i;

    for (i = 0; i < 8; i++)
        block[i] = (uint8_t)(n >> (56 - 8 * i));
    aes128_encrypt(&s->enc, AES_BLOCK_SIZE, sealed, block);
    nrpc__hex(sealed, AES_BLOCK_SIZE, out);
    out[NRPC__SEALED_LEN] = '\0';
}

int
nrpc__seal_open(const nrpc__seal *s, const char *text, size_t len, uint64_t *n)
{
    uint8_t sealed[AES_BLOCK_SIZE], block[AES_BLOCK_SIZE], zero = 0;
    size_t i;

    if (len != NRPC__SEALED_LEN)
        return -1;
    for (i = 0; i < NRPC__SEALED_LEN; i++) {
        char c = text[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        if (i % 2 == 0)
            sealed[i / 2] = (uint8_t)(d << 4);
        else
            sealed[i / 2] |= (uint8_t)d;
    }
    aes128_decrypt(&s->dec, AES_BLOCK_SIZE, block, sealed);
    /* A made-up token opens to 8 random bytes where we sealed zeros. */
    for (i = 8; i < AES_BLOCK_SIZE; i++)
        zero |= block[i];
    if (zero != 0)
        return -1;
    *n = 0;
    for (i = 0; i < 8; i++)
        *n = *n << 8 | block[i];
    return 0;
}
