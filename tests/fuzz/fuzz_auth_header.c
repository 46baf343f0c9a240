/* fuzz_auth_header.c: the Authorization header (Bearer, Basic) and JWT
 * checking on random input. A Bearer token lies inside the header and is a
 * token68; Basic yields a non-empty user without ':' and no control
 * characters; a JWT is checked against fixed keys (HS256 and Ed25519) and
 * never passes unless its signature verifies, which random input cannot
 * make happen. */
#include "auth/auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *JWKS =
    "{\"keys\": [{\"kty\": \"oct\", \"kid\": \"h\", \"k\": "
    "\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA\"}, "
    "{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"e\", "
    "\"x\": \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

static gw_auth *auth;
static gw_jwt_keys *keys;

static void
setup(void)
{
    char dir[64] = "/tmp/fuzz_auth_header.XXXXXX", path[128], err[256];
    char conf[512];
    FILE *f;

    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    f = fopen(path, "w");
    if (f == NULL)
        abort();
    fputs(JWKS, f);
    fclose(f);
    snprintf(conf, sizeof conf,
             "{\"jwt\": {\"jwks_file\": \"jwks.json\", \"issuer\": \"i\", \"audience\": \"a\"}}");
    if (gw_auth_parse(conf, strlen(conf), dir, &auth, err, sizeof err) != 0)
        abort();
    unlink(path); /* read by the parse: no temporary files left behind */
    rmdir(dir);
    keys = gw_jwt_keys_new(JWKS, err, sizeof err);
    if (keys == NULL)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *h = malloc(size + 1);
    const char *why = NULL;
    gw_principal p;
    gw_cred c;
    size_t i;

    if (auth == NULL)
        setup();
    memcpy(h, data, size);
    h[size] = '\0';
    switch (gw_cred_parse(h, &c, &why)) {
    case GW_CRED_NONE: abort(); /* only for a NULL header */
    case GW_CRED_BEARER:
        if (c.token < h || c.token + c.token_len != h + strlen(h) || c.token_len == 0)
            abort();
        for (i = 0; i < c.token_len; i++)
            if (c.token[i] <= ' ' || c.token[i] > '~')
                abort();
        if (gw_cred_is_jwt(c.token, c.token_len)) {
            memset(&p, 0, sizeof p);
            if (gw_jwt_check(auth, keys, c.token, c.token_len, 1700000000, &p) == GW_ID_OK)
                abort(); /* random bytes with a valid signature */
        }
        break;
    case GW_CRED_BASIC:
        if (c.user[0] == '\0' || strchr(c.user, ':'))
            abort();
        for (i = 0; c.user[i]; i++)
            if ((unsigned char)c.user[i] < 0x20)
                abort();
        break;
    case GW_CRED_MALFORMED:
        if (why == NULL)
            abort();
        break;
    }
    /* The JWT path on the raw input too, whatever the scheme. */
    if (gw_cred_is_jwt(h, strlen(h))) {
        memset(&p, 0, sizeof p);
        if (gw_jwt_check(auth, keys, h, strlen(h), 1700000000, &p) == GW_ID_OK)
            abort();
    }
    free(h);
    return 0;
}
