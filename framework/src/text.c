/* text.c: outside text made safe for one log line or one JSON string.
 *
 * Paths, subjects and messages come from clients. A control character in
 * a text log line would let a client forge lines ("%0A" in a path), and
 * jansson refuses a string that is not UTF-8, which once made an error
 * body "out of memory" and a JSON log line vanish. Both writers go through
 * here: control characters become \n, \r, \t or \xNN, and bytes that are
 * not UTF-8 become \xNN, so nothing is lost and nothing is forged. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* overlong forms, surrogates, past U+10FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void
nrpc__hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
}

size_t
nrpc__escape_text(char *out, size_t cap, const char *in, size_t n, int keep_utf8_only)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;

    if (cap == 0)
        return 0;
    while (i < n) {
        unsigned char c = s[i];
        char esc[4];
        size_t elen = 0, take = 1;

        if (c == '\n')
            esc[0] = '\\', esc[1] = 'n', elen = 2;
        else if (c == '\r')
            esc[0] = '\\', esc[1] = 'r', elen = 2;
        else if (c == '\t')
            esc[0] = '\\', esc[1] = 't', elen = 2;
        else if (c < 0x20 || c == 0x7f)
            elen = 4;
        else if (c >= 0x80 && keep_utf8_only && (take = utf8_len(s + i, n - i)) == 0)
            elen = 4, take = 1;
        if (elen == 4)
            esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15];
        if (elen > 0) {
            if (o + elen > cap - 1)
                break;
            memcpy(out + o, esc, elen);
            o += elen;
        } else {
            if (o + take > cap - 1)
                break; /* never a partial UTF-8 sequence at the cut */
            memcpy(out + o, s + i, take);
            o += take;
        }
        i += take;
    }
    out[o] = '\0';
    return o;
}

json_t *
nrpc__json_text(const char *s)
{
    json_t *v;
    size_t n, cap;
    char *buf;

    if (s == NULL)
        s = "";
    v = json_string(s);
    if (v != NULL)
        return v;
    /* Not UTF-8: keep the bytes, escaped. */
    n = strlen(s);
    cap = n * 4 + 1;
    buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    nrpc__escape_text(buf, cap, s, n, 1);
    v = json_string(buf);
    free(buf);
    return v;
}
