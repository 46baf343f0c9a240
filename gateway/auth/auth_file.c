/* auth_file.c: the GATEWAY_AUTH file. Parsed and checked whole at start:
 * a key we do not know, a hash crypt_r cannot use, a JWKS that does not
 * import all stop the gateway with a message that names the place, since a
 * credential file that half works is worse than none. */
#include "auth_internal.h"
#include "auth_toml.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
gw_sha256(const void *p, size_t n, unsigned char out[GW_SHA256_LEN])
{
    gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, out);
}

uint64_t
gw_digest_key(const unsigned char d[GW_SHA256_LEN])
{
    uint64_t k;
    memcpy(&k, d, sizeof k);
    return k;
}

int
gw_scope_token_valid(const char *s)
{
    return s != NULL && *s != '\0' && strchr(s, ' ') == NULL && nrpc_access_valid(s);
}

int
gw_scopes_join(json_t *arr, char *out, size_t outlen)
{
    size_t i, n = 0;
    json_t *s;

    out[0] = '\0';
    json_array_foreach (arr, i, s) {
        const char *v = json_string_value(s);
        size_t l;
        if (!gw_scope_token_valid(v))
            return -1;
        l = strlen(v);
        if (n + (n > 0) + l + 1 > outlen)
            return -1;
        if (n > 0)
            out[n++] = ' ';
        memcpy(out + n, v, l + 1);
        n += l;
    }
    return 0;
}

#define fail gw_auth_fail

int
gw_auth_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Every key of o is one of allowed (NULL-terminated). */
static int
keys_known(json_t *o, const char *const *allowed, const char *where, char *err, size_t errlen)
{
    const char *k;
    json_t *v;

    json_object_foreach (o, k, v) {
        const char *const *a;
        for (a = allowed; *a; a++)
            if (strcmp(*a, k) == 0)
                break;
        if (*a == NULL)
            return fail(err, errlen, "%s: unknown key '%.64s'", where, k);
    }
    return 0;
}

static int
sub_valid(const char *s)
{
    size_t i, n = s ? strlen(s) : 0;
    if (n == 0 || n > GW_AUTH_MAX_SUB)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* {"sub": ..., "scopes": [...]} (sub optional when def_sub is given). */
static int
identity_read(json_t *o, const char *def_sub, const char *where, char **sub, char **scopes,
              char *err, size_t errlen)
{
    json_t *jsub = json_object_get(o, "sub"), *jsc = json_object_get(o, "scopes");
    char buf[NRPC_MAX_ACCESS + 1];
    const char *s = jsub ? json_string_value(jsub) : def_sub;

    if (!sub_valid(s))
        return fail(err, errlen, "%s: \"sub\" must be a string of 1 to %d printable bytes", where,
                    GW_AUTH_MAX_SUB);
    if (jsc != NULL && !json_is_array(jsc))
        return fail(err, errlen, "%s: \"scopes\" must be an array of strings", where);
    if (gw_scopes_join(jsc, buf, sizeof buf) != 0)
        return fail(err, errlen,
                    "%s: \"scopes\" must be scope tokens (printable ASCII but space, '\"' and "
                    "'\\\\'), %d bytes in all at most",
                    where, NRPC_MAX_ACCESS);
    *sub = strdup(s);
    *scopes = strdup(buf);
    if (*sub == NULL || *scopes == NULL)
        return fail(err, errlen, "out of memory");
    return 0;
}

static int
crypt_chars(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!(((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '.' || s[i] == '/'))
            return 0;
    return 1;
}

/* bcrypt ($2a$, $2b$, $2y$, 60 characters) or yescrypt ($y$params$salt$hash),
 * whole: crypt_checksalt alone accepts a bare setting. */
static int
hash_valid(const char *h)
{
    size_t n = h ? strlen(h) : 0;

    if (n == 60 && h[0] == '$' && h[1] == '2' && strchr("aby", h[2]) && h[3] == '$' &&
        h[4] >= '0' && h[4] <= '3' && h[5] >= '0' && h[5] <= '9' && h[6] == '$' &&
        crypt_chars(h + 7, 53))
        return crypt_checksalt(h) == CRYPT_SALT_OK;
    if (n > 4 && strncmp(h, "$y$", 3) == 0) {
        const char *p = h + 3, *d1 = strchr(p, '$'), *d2 = d1 ? strchr(d1 + 1, '$') : NULL;
        if (d1 == NULL || d2 == NULL || d1 == p || d2 == d1 + 1 || strlen(d2 + 1) != 43 ||
            !crypt_chars(p, (size_t)(d1 - p)) || !crypt_chars(d1 + 1, (size_t)(d2 - d1 - 1)) ||
            !crypt_chars(d2 + 1, 43))
            return 0;
        return crypt_checksalt(h) == CRYPT_SALT_OK;
    }
    return 0;
}

static int
parse_tokens(gw_auth *a, json_t *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"sub", "scopes", NULL};
    const char *tok;
    json_t *v;

    if (!json_is_object(o))
        return fail(err, errlen, "\"tokens\" must be an object: token -> {sub, scopes}");
    json_object_foreach (o, tok, v) {
        gw_token_entry *e;
        char where[96];
        size_t n = strlen(tok), i;

        snprintf(where, sizeof where, "tokens[#%zu]", a->ntokens + 1); /* never the secret */
        if (n < 16 || n > 4096)
            return fail(err, errlen, "%s: a token must have 16 to 4096 characters", where);
        for (i = 0; i < n; i++)
            if (!(((tok[i] | 0x20) >= 'a' && (tok[i] | 0x20) <= 'z') ||
                  (tok[i] >= '0' && tok[i] <= '9') || strchr("-._~+/=", tok[i])))
                return fail(err, errlen,
                            "%s: a token may have letters, digits and -._~+/= only", where);
        if (!json_is_object(v) || keys_known(v, keys, where, err, errlen) != 0)
            return json_is_object(v) ? -1 : fail(err, errlen, "%s: must be {sub, scopes}", where);
        e = calloc(1, sizeof *e);
        if (e == NULL)
            return fail(err, errlen, "out of memory");
        gw_sha256(tok, n, e->digest);
        if (nrpc_table_put(&a->tokens, &e->node, gw_digest_key(e->digest)) != 0) {
            free(e);
            return fail(err, errlen, "out of memory");
        }
        a->ntokens++;
        if (identity_read(v, NULL, where, &e->sub, &e->scopes, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int
parse_basic(gw_auth *a, json_t *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"hash", "sub", "scopes", NULL};
    const char *user;
    json_t *v;

    if (!json_is_object(o))
        return fail(err, errlen, "\"basic\" must be an object: user -> {hash, scopes}");
    json_object_foreach (o, user, v) {
        gw_basic_entry *e;
        char where[128];
        const char *hash;

        snprintf(where, sizeof where, "basic.%.64s", user);
        if (!sub_valid(user) || strchr(user, ':'))
            return fail(err, errlen, "%s: a user name must be printable, without ':'", where);
        if (!json_is_object(v))
            return fail(err, errlen, "%s: must be {hash, scopes}", where);
        if (keys_known(v, keys, where, err, errlen) != 0)
            return -1;
        hash = json_string_value(json_object_get(v, "hash"));
        if (!hash_valid(hash))
            return fail(err, errlen,
                        "%s: \"hash\" must be a bcrypt ($2b$...) or yescrypt ($y$...) hash, as "
                        "mkpasswd or htpasswd -B make",
                        where);
        e = calloc(1, sizeof *e);
        if (e == NULL)
            return fail(err, errlen, "out of memory");
        if (nrpc_table_put(&a->basic, &e->node, nrpc_hash_str(user)) != 0) {
            free(e);
            return fail(err, errlen, "out of memory");
        }
        a->nbasic++;
        if (a->decoy == NULL)
            a->decoy = e; /* the first user: unknown names cost what its hash does */
        e->user = strdup(user);
        e->hash = strdup(hash);
        if (e->user == NULL || e->hash == NULL)
            return fail(err, errlen, "out of memory");
        if (identity_read(v, user, where, &e->sub, &e->scopes, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int
parse_jwt(gw_auth *a, json_t *o, const char *dir, char *err, size_t errlen)
{
    static const char *const keys[] = {"jwks_file", "issuer", "audience", "scopes_claim", NULL};
    const char *file, *iss, *aud, *claim;
    char path[4096];
    gw_jwt_keys *k;
    size_t len;

    if (!json_is_object(o))
        return fail(err, errlen, "\"jwt\" must be an object");
    if (keys_known(o, keys, "jwt", err, errlen) != 0)
        return -1;
    file = json_string_value(json_object_get(o, "jwks_file"));
    iss = json_string_value(json_object_get(o, "issuer"));
    aud = json_string_value(json_object_get(o, "audience"));
    claim = json_string_value(json_object_get(o, "scopes_claim"));
    if (file == NULL || *file == '\0')
        return fail(err, errlen, "jwt: \"jwks_file\" (a path) is required");
    /* A JWT good for another service or from another issuer must not pass
     * here: both are checked, so both are required. */
    if (iss == NULL || *iss == '\0' || aud == NULL || *aud == '\0')
        return fail(err, errlen, "jwt: \"issuer\" and \"audience\" (strings) are required");
    if (json_object_get(o, "scopes_claim") && (claim == NULL || *claim == '\0'))
        return fail(err, errlen, "jwt: \"scopes_claim\" must be a claim name");
    if (file[0] == '/' || dir == NULL)
        snprintf(path, sizeof path, "%s", file);
    else
        snprintf(path, sizeof path, "%s/%s", dir, file);
    a->jwks_text = nrpc_read_file(path, GW_AUTH_MAX_FILE, &len, err, errlen);
    if (a->jwks_text == NULL)
        return fail(err + strlen(err), errlen - strlen(err), " (jwt.jwks_file)");
    k = gw_jwt_keys_new(a->jwks_text, err, errlen);
    if (k == NULL)
        return -1;
    gw_jwt_keys_free(k);
    a->issuer = strdup(iss);
    a->audience = strdup(aud);
    a->scopes_claim = strdup(claim ? claim : "scope");
    if (a->issuer == NULL || a->audience == NULL || a->scopes_claim == NULL)
        return fail(err, errlen, "out of memory");
    return 0;
}

static int
parse_authorizer(gw_auth *a, json_t *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"rpc", "ttl_s", "timeout_s", NULL};
    const char *rpc;
    json_t *ttl, *to;

    if (!json_is_object(o))
        return fail(err, errlen, "\"authorizer\" must be an object");
    if (keys_known(o, keys, "authorizer", err, errlen) != 0)
        return -1;
    rpc = json_string_value(json_object_get(o, "rpc"));
    if (rpc == NULL || !nrpc_subject_is_rpc(rpc, strlen(rpc)))
        return fail(err, errlen, "authorizer: \"rpc\" must be <service>.<method>");
    ttl = json_object_get(o, "ttl_s");
    to = json_object_get(o, "timeout_s");
    if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
                json_integer_value(ttl) > 86400))
        return fail(err, errlen, "authorizer: \"ttl_s\" must be an integer from 0 to 86400");
    if (to && (!json_is_number(to) || json_number_value(to) <= 0 || json_number_value(to) > 60))
        return fail(err, errlen, "authorizer: \"timeout_s\" must be a number above 0, at most 60");
    a->authorizer_rpc = strdup(rpc);
    if (a->authorizer_rpc == NULL)
        return fail(err, errlen, "out of memory");
    a->authorizer_ttl_ms = (ttl ? json_integer_value(ttl) : 60) * 1000;
    a->authorizer_timeout_ms = to ? (int64_t)(json_number_value(to) * 1000) : 2000;
    if (a->authorizer_timeout_ms < 1)
        a->authorizer_timeout_ms = 1;
    return 0;
}

int
gw_auth_parse(const char *text, size_t len, const char *dir, gw_auth **out, char *err,
              size_t errlen)
{
    static const char *const keys[] = {"tokens", "basic", "jwt", "authorizer", "topics", NULL};
    json_error_t jerr;
    json_t *root, *v;
    gw_auth *a;
    int rc = -1;

    *out = NULL;
    if (len > GW_AUTH_MAX_FILE)
        return fail(err, errlen, "larger than %d bytes", GW_AUTH_MAX_FILE);
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(err, errlen, "not JSON: line %d column %d: %s", jerr.line, jerr.column,
                    jerr.text);
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        json_decref(root);
        return fail(err, errlen, "out of memory");
    }
    if (!json_is_object(root))
        fail(err, errlen, "must be a JSON object with tokens, basic, jwt, authorizer");
    else if (keys_known(root, keys, "the file", err, errlen) != 0)
        ;
    else if ((v = json_object_get(root, "tokens")) && parse_tokens(a, v, err, errlen) != 0)
        ;
    else if ((v = json_object_get(root, "basic")) && parse_basic(a, v, err, errlen) != 0)
        ;
    else if ((v = json_object_get(root, "jwt")) && parse_jwt(a, v, dir, err, errlen) != 0)
        ;
    else if ((v = json_object_get(root, "authorizer")) &&
             parse_authorizer(a, v, err, errlen) != 0)
        ;
    else if ((v = json_object_get(root, "topics")) && gw_topic_rules_parse(a, v, err, errlen) != 0)
        ;
    else if (a->ntokens == 0 && a->nbasic == 0 && a->jwks_text == NULL &&
             a->authorizer_rpc == NULL)
        fail(err, errlen, "no credentials: give tokens, basic, jwt or authorizer");
    else
        rc = 0;
    json_decref(root);
    if (rc != 0) {
        gw_auth_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

int
gw_auth_load(const char *path, gw_auth **out, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = nrpc_read_file(path, GW_AUTH_MAX_FILE, &len, err, errlen), *dir, *slash;
    int rc;

    *out = NULL;
    if (text != NULL && gw_auth_path_is_toml(path)) { /* TOML: as the JSON it stands for */
        char *json = gw_toml_to_json_text(text, len, &len, err, errlen);
        free(text);
        text = json;
    }
    if (text == NULL)
        return -1;
    dir = strdup(path);
    slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    rc = gw_auth_parse(text, len, slash ? (dir[0] ? dir : "/") : NULL, out, err, errlen);
    free(dir);
    free(text);
    return rc;
}

void
gw_auth_free(gw_auth *a)
{
    nrpc_tnode *n;

    if (a == NULL)
        return;
    while ((n = nrpc_table_take_any(&a->tokens)) != NULL) {
        gw_token_entry *e = (gw_token_entry *)n;
        free(e->sub);
        free(e->scopes);
        free(e);
    }
    while ((n = nrpc_table_take_any(&a->basic)) != NULL) {
        gw_basic_entry *e = (gw_basic_entry *)n;
        free(e->user);
        free(e->hash);
        free(e->sub);
        free(e->scopes);
        free(e);
    }
    nrpc_table_free(&a->tokens);
    nrpc_table_free(&a->basic);
    free(a->jwks_text);
    free(a->issuer);
    free(a->audience);
    free(a->scopes_claim);
    free(a->authorizer_rpc);
    gw_topic_rules_free(a);
    free(a);
}

void
gw_auth_describe(const gw_auth *a, char *out, size_t outlen)
{
    snprintf(out, outlen, "%zu tokens, %zu Basic users, JWTs %s%s%s, authorizer %s",
             a->ntokens, a->nbasic, a->jwks_text ? "from issuer " : "off",
             a->jwks_text ? a->issuer : "", "", a->authorizer_rpc ? a->authorizer_rpc : "off");
}

const char *
gw_auth_challenge(const gw_auth *a, int basic)
{
    /* Basic is offered only when the file has Basic users. Both challenges
     * in one header (RFC 9110 11.6.1 allows a list). */
    if (a->nbasic == 0)
        return "Bearer realm=\"" GW_AUTH_REALM "\"";
    if (a->ntokens == 0 && a->jwks_text == NULL && a->authorizer_rpc == NULL)
        return "Basic realm=\"" GW_AUTH_REALM "\", charset=\"UTF-8\"";
    return "Bearer realm=\"" GW_AUTH_REALM "\", Basic realm=\"" GW_AUTH_REALM
           "\", charset=\"UTF-8\"";
}
