/* auth_header.c: the Authorization header, read strictly (RFC 9110 11.6.2,
 * RFC 6750 token68 for Bearer, RFC 7617 for Basic). Whatever does not have
 * exactly the expected shape is refused: a lenient parser of credentials
 * is where request smuggling and confused checks start. */
#include "auth.h"

#include <string.h>
#include <strings.h>

static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long
gw_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    size_t i, o = 0;

    if (n % 4 != 0)
        return -1;
    for (i = 0; i < n; i += 4) {
        int v[4], k, pad = 0;
        for (k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad > 0 || (v[k] = b64_value(c)) < 0) {
                return -1; /* data after '=', or not base64 */
            }
        }
        if (o + 3 - (size_t)pad > cap)
            return -1;
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            out[o++] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
        if (pad < 1)
            out[o++] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
    }
    return (long)o;
}

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int
token68_valid(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && (((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') ||
                     (s[i] >= '0' && s[i] <= '9') || strchr("-._~+/", s[i]) != NULL))
        i++;
    if (i == 0)
        return 0;
    while (i < n && s[i] == '=')
        i++;
    return i == n;
}

int
gw_cred_is_jwt(const char *token, size_t n)
{
    size_t i, dots = 0, part = 0;

    for (i = 0; i < n; i++) {
        char c = token[i];
        if (c == '.') {
            if (part == 0)
                return 0;
            dots++;
            part = 0;
        } else if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            part++;
        } else {
            return 0;
        }
    }
    return dots == 2 && part > 0;
}

gw_cred_kind
gw_cred_parse(const char *h, gw_cred *c, const char **why)
{
    static const char *unused;
    size_t n, sp;
    const char *v;

    if (why == NULL)
        why = &unused;
    *why = NULL;
    memset(c, 0, offsetof(gw_cred, buf));
    c->buf[0] = '\0';
    if (h == NULL)
        return c->kind = GW_CRED_NONE;
    c->kind = GW_CRED_MALFORMED;
    n = strnlen(h, GW_AUTH_MAX_HEADER + 1);
    if (n > GW_AUTH_MAX_HEADER) {
        *why = "the Authorization header is too long";
        return c->kind;
    }
    sp = strcspn(h, " ");
    if (sp == n || sp == 0) {
        *why = "the Authorization header must be 'Bearer <token>' or 'Basic <base64>'";
        return c->kind;
    }
    v = h + sp;
    while (*v == ' ')
        v++;
    n -= (size_t)(v - h);
    if (sp == 6 && strncasecmp(h, "Bearer", 6) == 0) {
        if (!token68_valid(v, n)) {
            *why = "the bearer token is empty or has characters a token cannot have";
            return c->kind;
        }
        c->token = v;
        c->token_len = n;
        return c->kind = GW_CRED_BEARER;
    }
    if (sp == 5 && strncasecmp(h, "Basic", 5) == 0) {
        long len = gw_base64_decode(v, n, (unsigned char *)c->buf, GW_CRED_MAX_BASIC);
        char *colon;
        long i;

        if (len <= 0) {
            *why = "the Basic credentials are not base64 of user:password";
            return c->kind;
        }
        c->buf[len] = '\0';
        for (i = 0; i < len; i++)
            if ((unsigned char)c->buf[i] < 0x20 || c->buf[i] == 0x7f) {
                *why = "the Basic credentials have control characters";
                return c->kind;
            }
        colon = memchr(c->buf, ':', (size_t)len);
        if (colon == NULL || colon == c->buf) {
            *why = "the Basic credentials must be user:password with a user";
            return c->kind;
        }
        *colon = '\0';
        c->user = c->buf;
        c->pass = colon + 1;
        return c->kind = GW_CRED_BASIC;
    }
    *why = "the Authorization header must be 'Bearer <token>' or 'Basic <base64>'";
    return c->kind;
}
