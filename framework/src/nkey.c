/* nkey.c: the public key of a NATS user nkey seed.
 *
 * nats.c signs the server's nonce with a seed it reads from a file
 * (natsOptions_SetNKeyFromSeed), but wants the public key from us. An nkey
 * is base32 (RFC 4648, no padding) of prefix bytes, a key and a CRC-16
 * (XMODEM) of what precedes it, stored little-endian:
 *   seed    "SU..."  [0x95, 0x00] + 32-byte ed25519 seed + crc  (58 chars)
 *   public  "U..."   [0xa0]       + 32-byte ed25519 key  + crc  (56 chars)
 * The ed25519 arithmetic is nettle's (a dependency of gnutls). */
#include "nkey.h"

#include <nettle/eddsa.h>

#include <string.h>

#define PREFIX_SEED (18 << 3) /* 'S' */
#define PREFIX_USER (20 << 3) /* 'U' */
#define SEED_RAW 36           /* 2 prefix + 32 + 2 crc */
#define PUB_RAW 35            /* 1 prefix + 32 + 2 crc */

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static uint16_t
crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    size_t i;
    int b;

    for (i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* Decodes exactly want bytes from n base32 characters; -1 on a character
 * outside the alphabet or a length that does not fit. */
static int
b32_decode(const char *s, size_t n, uint8_t *out, size_t want)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t i, o = 0;

    if (n != (want * 8 + 4) / 5)
        return -1;
    for (i = 0; i < n; i++) {
        const char *p = s[i] ? strchr(B32, s[i]) : NULL;
        if (p == NULL)
            return -1;
        acc = (acc << 5) | (uint32_t)(p - B32);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o == want ? 0 : -1;
}

static void
b32_encode(const uint8_t *in, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            *out++ = B32[(acc >> bits) & 31];
        }
    }
    if (bits > 0)
        *out++ = B32[(acc << (5 - bits)) & 31];
    *out = '\0';
}

const char *
nrpc__nkey_find_seed(const char *text, size_t len, size_t *seed_len)
{
    size_t i = 0;

    /* nats.c's rule (it reads the same file to sign): the first line that
     * starts, after blanks, with "SU". */
    while (i < len) {
        size_t j = i, end;
        while (j < len && (text[j] == ' ' || text[j] == '\t'))
            j++;
        for (end = j; end < len && text[end] != '\n'; end++)
            ;
        if (end - j >= 2 && text[j] == 'S' && text[j + 1] == 'U') {
            size_t k = j;
            while (k < end && text[k] != '\r' && text[k] != ' ' && text[k] != '\t')
                k++;
            *seed_len = k - j;
            return text + j;
        }
        i = end + 1;
    }
    return NULL;
}

const char *
nrpc__nkey_user_public(const char *seed, size_t len, char out[NRPC_NKEY_PUBLIC_LEN + 1])
{
    uint8_t raw[SEED_RAW], pub[PUB_RAW];
    uint16_t crc;
    const char *why = NULL;

    if (len != NRPC_NKEY_SEED_LEN || b32_decode(seed, len, raw, SEED_RAW) != 0)
        why = "not a base32 nkey seed of 58 characters";
    else if ((crc = crc16(raw, SEED_RAW - 2)) !=
             (uint16_t)(raw[SEED_RAW - 2] | raw[SEED_RAW - 1] << 8))
        why = "its checksum does not match";
    else if ((raw[0] & 0xf8) != PREFIX_SEED ||
             (uint8_t)(((raw[0] & 7) << 5) | (raw[1] >> 3)) != PREFIX_USER)
        why = "not the seed of a user nkey (SU...)";
    if (why == NULL) {
        pub[0] = PREFIX_USER;
        ed25519_sha512_public_key(pub + 1, raw + 2);
        crc = crc16(pub, PUB_RAW - 2);
        pub[PUB_RAW - 2] = (uint8_t)(crc & 0xff);
        pub[PUB_RAW - 1] = (uint8_t)(crc >> 8);
        b32_encode(pub, PUB_RAW, out);
    }
    /* The seed is a secret: leave no copy of it on the stack. */
    memset(raw, 0, sizeof raw);
    __asm__ __volatile__("" : : "r"(raw) : "memory");
    return why;
}
