/* access.c: who may call an rpc (nrpc_rpc.access) and who is calling (the
 * principal the gateway passes in NRPC_HDR_PRINCIPAL).
 *
 * An access string is a keyword or space-separated OAuth scope tokens, the
 * same shape as a JWT's "scope" claim, so checking a caller is comparing two
 * token lists with no parsing into structures and no allocation: the
 * gateway does it on every call. */
#include "runtime.h"

#include <string.h>

#define ACCESS_MAX_SCOPES 32

/* RFC 6749 scope-token characters: %x21 / %x23-5B / %x5D-7E. */
static int
scope_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\';
}

int
nrpc_access_valid(const char *access)
{
    size_t i, n, tokens = 0;

    if (access == NULL)
        return 1;
    n = strlen(access);
    if (n == 0 || n > NRPC_MAX_ACCESS)
        return 0;
    for (i = 0; i < n; i++) {
        if (access[i] == ' ') {
            /* single separators only: no leading, trailing or double space */
            if (i == 0 || i == n - 1 || access[i + 1] == ' ')
                return 0;
        } else if (!scope_char((unsigned char)access[i])) {
            return 0;
        } else if (i == 0 || access[i - 1] == ' ') {
            tokens++;
        }
    }
    return tokens <= ACCESS_MAX_SCOPES;
}

/* 1 if the n bytes of have hold the token tok (tlen bytes) as a whole,
 * space-separated word. */
static int
scopes_hold(const char *have, size_t n, const char *tok, size_t tlen)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i;
        while (j < n && have[j] != ' ')
            j++;
        if (j - i == tlen && memcmp(have + i, tok, tlen) == 0)
            return 1;
        i = j + 1;
    }
    return 0;
}

int
nrpc_access_allows(const char *access, const char *have, size_t n)
{
    const char *p;

    if (access == NULL || strcmp(access, NRPC_PUBLIC) == 0 ||
        strcmp(access, NRPC_AUTHENTICATED) == 0)
        return 1;
    if (have == NULL)
        n = 0;
    for (p = access; *p;) {
        size_t tlen = strcspn(p, " ");
        if (tlen > 0 && !scopes_hold(have, n, p, tlen))
            return 0;
        p += tlen;
        while (*p == ' ')
            p++;
    }
    return 1;
}

/* ---- the principal of a call -------------------------------------------- */

/* {"sub": string, "scopes": [string...]}, else NULL: a header that does not
 * have this shape is treated as no principal at all. */
static json_t *
principal_parse(const char *text)
{
    json_t *p = json_loads(text, 0, NULL), *scopes, *s;
    size_t i;

    if (!json_is_object(p) || !json_is_string(json_object_get(p, "sub")))
        goto bad;
    scopes = json_object_get(p, "scopes");
    if (scopes == NULL)
        json_object_set_new(p, "scopes", scopes = json_array());
    if (!json_is_array(scopes))
        goto bad;
    json_array_foreach (scopes, i, s)
        if (!json_is_string(s))
            goto bad;
    return p;
bad:
    json_decref(p);
    return NULL;
}

json_t *
nrpc_call_principal(nrpc_call *call)
{
    const char *v = NULL;

    if (call == NULL)
        return NULL;
    if (!call->principal_read) {
        call->principal_read = 1;
        if (call->msg != NULL &&
            natsMsgHeader_Get(call->msg, NRPC_HDR_PRINCIPAL, &v) == NATS_OK && v != NULL)
            call->principal = principal_parse(v);
    }
    return call->principal;
}

int
nrpc_call_has_scope(nrpc_call *call, const char *scope)
{
    json_t *p = nrpc_call_principal(call), *s;
    size_t i;

    if (p == NULL || scope == NULL)
        return 0;
    json_array_foreach (json_object_get(p, "scopes"), i, s)
        if (strcmp(json_string_value(s), scope) == 0)
            return 1;
    return 0;
}
