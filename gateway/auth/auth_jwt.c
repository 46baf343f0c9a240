/* auth_jwt.c: JWTs (JWS compact) checked against the JWKS file, with
 * rhonabwy. Only HS256, RS256 and EdDSA are accepted, each only with a key
 * of its own type (no HS256 "signed" with an RSA public key), and nothing
 * in the token's header may bring a key of its own (jwk, jku, x5u, x5c are
 * not followed): the keys are the file's and nothing else. Claims are
 * checked here: exp is required, nbf honoured, iss equal, aud equal or
 * listed. */
#include "auth_internal.h"

#include <rhonabwy.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jwk_t *jwk;
    unsigned type; /* R_KEY_TYPE_HMAC, _RSA or _EDDSA */
    char *kid;     /* NULL when the key has none */
    char *alg;     /* the key's "alg", NULL when none */
} jwt_key;

struct gw_jwt_keys {
    size_t n;
    jwt_key *keys;
};

void
gw_jwt_keys_free(gw_jwt_keys *k)
{
    size_t i;

    if (k == NULL)
        return;
    for (i = 0; i < k->n; i++) {
        r_jwk_free(k->keys[i].jwk);
        free(k->keys[i].kid);
        free(k->keys[i].alg);
    }
    free(k->keys);
    free(k);
}

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

gw_jwt_keys *
gw_jwt_keys_new(const char *text, char *err, size_t errlen)
{
    jwks_t *jwks = NULL;
    gw_jwt_keys *k = calloc(1, sizeof *k);
    size_t i, n;

    if (k == NULL || r_jwks_init(&jwks) != RHN_OK) {
        snprintf(err, errlen, "out of memory");
        free(k);
        return NULL;
    }
    if (r_jwks_import_from_json_str(jwks, text) != RHN_OK || (n = r_jwks_size(jwks)) == 0) {
        snprintf(err, errlen, "jwt.jwks_file: not a JWKS ({\"keys\": [...]}) of valid keys");
        goto bad;
    }
    k->keys = calloc(n, sizeof *k->keys);
    if (k->keys == NULL) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    for (i = 0; i < n; i++) {
        jwk_t *jwk = r_jwks_get_at(jwks, i);
        unsigned bits = 0;
        int t = jwk ? r_jwk_key_type(jwk, &bits, 0) : 0;
        jwt_key *key = &k->keys[k->n];

        if (jwk == NULL) {
            snprintf(err, errlen, "jwt.jwks_file: key %zu does not import", i);
            goto bad;
        }
        key->jwk = jwk;
        k->n++;
        if ((t & R_KEY_TYPE_PRIVATE) && !(t & R_KEY_TYPE_HMAC)) {
            /* A private key in a file of verification keys is a mistake
             * that leaks signing power: refuse it. */
            snprintf(err, errlen, "jwt.jwks_file: key %zu is a private key; give public keys", i);
            goto bad;
        }
        key->type = (unsigned)t & (R_KEY_TYPE_HMAC | R_KEY_TYPE_RSA | R_KEY_TYPE_EDDSA);
        if (key->type == 0) {
            snprintf(err, errlen,
                     "jwt.jwks_file: key %zu is neither an HMAC (oct), RSA nor Ed25519 (OKP) key",
                     i);
            goto bad;
        }
        key->kid = dup_or_null(r_jwk_get_property_str(jwk, "kid"));
        key->alg = dup_or_null(r_jwk_get_property_str(jwk, "alg"));
    }
    r_jwks_free(jwks);
    return k;
bad:
    r_jwks_free(jwks);
    gw_jwt_keys_free(k);
    return NULL;
}

static gw_id_result
invalid(gw_principal *p, const char *why)
{
    p->result = GW_ID_INVALID;
    snprintf(p->why, sizeof p->why, "%s", why);
    return GW_ID_INVALID;
}

/* A NumericDate claim: a JSON number (integer or real) of seconds. */
static int
claim_time(json_t *claims, const char *name, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_number(v))
        return -1;
    *out = (int64_t)json_number_value(v);
    return 0;
}

static gw_id_result
jwt_claims(const gw_auth *a, json_t *claims, int64_t now, gw_principal *p)
{
    json_t *aud = json_object_get(claims, "aud"), *sc, *v;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    int64_t exp, nbf;
    int aud_ok = 0;
    size_t i;

    if (claim_time(claims, "exp", &exp) != 0)
        return invalid(p, "the JWT has no exp");
    if (exp + GW_AUTH_JWT_LEEWAY_S <= now)
        return invalid(p, "the JWT has expired");
    if (json_object_get(claims, "nbf") &&
        (claim_time(claims, "nbf", &nbf) != 0 || nbf - GW_AUTH_JWT_LEEWAY_S > now))
        return invalid(p, "the JWT is not valid yet (nbf)");
    if (iss == NULL || strcmp(iss, a->issuer) != 0)
        return invalid(p, "the JWT's issuer (iss) is not the one this gateway trusts");
    if (json_is_string(aud))
        aud_ok = strcmp(json_string_value(aud), a->audience) == 0;
    else if (json_is_array(aud))
        json_array_foreach (aud, i, v)
            if (json_is_string(v) && strcmp(json_string_value(v), a->audience) == 0)
                aud_ok = 1;
    if (!aud_ok)
        return invalid(p, "the JWT's audience (aud) is not this gateway's");
    if (sub == NULL || *sub == '\0' || strlen(sub) > GW_AUTH_MAX_SUB)
        return invalid(p, "the JWT has no usable sub");
    for (i = 0; sub[i]; i++)
        if ((unsigned char)sub[i] < 0x20 || sub[i] == 0x7f)
            return invalid(p, "the JWT has no usable sub");
    /* Scopes: an OAuth "scope" string (space-separated) or an array. */
    sc = json_object_get(claims, a->scopes_claim);
    p->scopes[0] = '\0';
    if (json_is_string(sc)) {
        const char *s = json_string_value(sc);
        if (*s != '\0' && (strlen(s) >= sizeof p->scopes || !nrpc_access_valid(s)))
            return invalid(p, "the JWT's scopes are not scope tokens");
        snprintf(p->scopes, sizeof p->scopes, "%s", s);
    } else if (json_is_array(sc)) {
        if (gw_scopes_join(sc, p->scopes, sizeof p->scopes) != 0)
            return invalid(p, "the JWT's scopes are not scope tokens");
    } else if (sc != NULL) {
        return invalid(p, "the JWT's scopes claim is neither a string nor an array");
    }
    snprintf(p->sub, sizeof p->sub, "%s", sub);
    p->exp = exp;
    p->result = GW_ID_OK;
    return GW_ID_OK;
}

gw_id_result
gw_jwt_check(const gw_auth *a, gw_jwt_keys *k, const char *token, size_t n, int64_t now,
             gw_principal *p)
{
    jwt_t *jwt = NULL;
    jwa_alg alg;
    unsigned want;
    const char *kid, *alg_name;
    json_t *claims;
    gw_id_result r;
    size_t i;
    int verified = 0;

    if (k == NULL || r_jwt_init(&jwt) != RHN_OK)
        return invalid(p, "JWTs are not accepted here");
    /* R_PARSE_NONE: no key from the token's header, and no alg "none". */
    if (r_jwt_advanced_parsen(jwt, token, n, R_PARSE_NONE, 0) != RHN_OK ||
        r_jwt_get_type(jwt) != R_JWT_TYPE_SIGN) {
        r_jwt_free(jwt);
        return invalid(p, "the bearer token is not a signed JWT this gateway can read");
    }
    alg = r_jwt_get_sign_alg(jwt);
    want = alg == R_JWA_ALG_HS256   ? R_KEY_TYPE_HMAC
           : alg == R_JWA_ALG_RS256 ? R_KEY_TYPE_RSA
           : alg == R_JWA_ALG_EDDSA ? R_KEY_TYPE_EDDSA
                                    : 0;
    alg_name = alg == R_JWA_ALG_HS256 ? "HS256" : alg == R_JWA_ALG_RS256 ? "RS256" : "EdDSA";
    if (want == 0) {
        r_jwt_free(jwt);
        return invalid(p, "the JWT's algorithm is not HS256, RS256 or EdDSA");
    }
    kid = r_jwt_get_header_str_value(jwt, "kid");
    for (i = 0; i < k->n && !verified; i++) {
        const jwt_key *key = &k->keys[i];
        if (key->type != want || (kid && key->kid && strcmp(kid, key->kid) != 0) ||
            (key->alg && strcmp(key->alg, alg_name) != 0))
            continue;
        verified = r_jwt_verify_signature(jwt, key->jwk, 0) == RHN_OK;
    }
    if (!verified) {
        r_jwt_free(jwt);
        return invalid(p, "the JWT's signature does not verify with a key of this gateway");
    }
    claims = r_jwt_get_full_claims_json_t(jwt);
    r = json_is_object(claims) ? jwt_claims(a, claims, now, p)
                               : invalid(p, "the JWT's claims are not an object");
    json_decref(claims);
    r_jwt_free(jwt);
    return r;
}
