/* nats_creds.c: credentials and TLS of every NATS connection, from the
 * conventional environment variables (see nrpc__nats_creds_apply).
 *
 * Secrets are handed to nats.c and never logged: what is logged names the
 * variables, the user name, the public nkey or a file's path. Files are
 * checked here, at start, so that a typo fails the process at once with
 * the variable's name rather than at every connect attempt. */
#include "internal.h"
#include "nkey.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Larger than any seed, .creds file or certificate chain we expect. */
#define CREDS_FILE_MAX (256 * 1024)

static const char *
env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL; /* set but empty counts as unset (${X:-} in compose) */
}

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reads up to CREDS_FILE_MAX bytes of path (nrpc_read_file), the error
 * naming var: new, to be wiped and freed by wipe_free. NULL with err
 * filled. */
static char *
read_file(const char *var, const char *path, size_t *len, char *err, size_t errlen)
{
    char why[512];
    char *buf = nrpc_read_file(path, CREDS_FILE_MAX, len, why, sizeof why);

    if (buf == NULL)
        fail(err, errlen, "%s: %s", var, why);
    return buf;
}

static void
wipe_free(char *buf, size_t len)
{
    if (buf == NULL)
        return;
    memset(buf, 0, len);
    __asm__ __volatile__("" : : "r"(buf) : "memory");
    free(buf);
}

static int
readable(const char *var, const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = read_file(var, path, &len, err, errlen);

    wipe_free(buf, len);
    return buf ? 0 : -1;
}

/* nats.c's reason for the last failure, without its "(file:line): ". */
static const char *
nats_reason(void)
{
    natsStatus s = NATS_OK;
    const char *why = nats_GetLastError(&s);

    if (why && why[0] == '(' && strstr(why, "): "))
        why = strstr(why, "): ") + 3;
    return why && *why ? why : natsStatus_GetText(s);
}

/* Public key of the user seed in a file's text; the seed itself is not
 * kept. */
static int
seed_public(const char *var, const char *path, const char *text, size_t len,
            char pub[NRPC_NKEY_PUBLIC_LEN + 1], char *err, size_t errlen)
{
    size_t slen = 0;
    const char *seed = nrpc__nkey_find_seed(text, len, &slen), *why;

    if (seed == NULL)
        return fail(err, errlen, "%s: '%s' holds no user nkey seed (a line starting SU)", var,
                    path);
    why = nrpc__nkey_user_public(seed, slen, pub);
    if (why)
        return fail(err, errlen, "%s: the seed in '%s' is %s", var, path, why);
    return 0;
}

/* Adds one item to the description of what the connection uses. */
static void
describe(char *what, size_t whatlen, const char *fmt, ...)
{
    size_t n = strlen(what);
    va_list ap;

    if (n + 3 >= whatlen)
        return;
    if (n > 0) {
        memcpy(what + n, ", ", 3);
        n += 2;
    }
    va_start(ap, fmt);
    vsnprintf(what + n, whatlen - n, fmt, ap);
    va_end(ap);
}

static int
apply_auth(natsOptions *o, const char *url, char *what, size_t whatlen, char *err, size_t errlen)
{
    const char *user = env("NATS_USER"), *pass = env("NATS_PASSWORD");
    const char *token = env("NATS_TOKEN"), *seedf = env("NATS_NKEY_SEED");
    const char *credsf = env("NATS_CREDS");
    const char *set[4];
    int n = 0;
    natsStatus s = NATS_OK;

    if (user || pass)
        set[n++] = user ? "NATS_USER" : "NATS_PASSWORD";
    if (token)
        set[n++] = "NATS_TOKEN";
    if (seedf)
        set[n++] = "NATS_NKEY_SEED";
    if (credsf)
        set[n++] = "NATS_CREDS";
    if (n > 1)
        return fail(err, errlen, "%s and %s are both set: use one way to authenticate to NATS",
                    set[0], set[1]);
    if (n == 1 && url && strchr(url, '@'))
        return fail(err, errlen, "NATS_URL carries credentials (user@host) and %s is set: use one",
                    set[0]);
    if ((user || pass) && !(user && pass))
        return fail(err, errlen, "%s is set without %s", user ? "NATS_USER" : "NATS_PASSWORD",
                    user ? "NATS_PASSWORD" : "NATS_USER");

    if (user) {
        s = natsOptions_SetUserInfo(o, user, pass);
        describe(what, whatlen, "user '%s' (NATS_USER, NATS_PASSWORD)", user);
    } else if (token) {
        s = natsOptions_SetToken(o, token);
        describe(what, whatlen, "a token (NATS_TOKEN)");
    } else if (seedf) {
        char pub[NRPC_NKEY_PUBLIC_LEN + 1];
        size_t len = 0;
        char *text = read_file("NATS_NKEY_SEED", seedf, &len, err, errlen);
        int rc = text ? seed_public("NATS_NKEY_SEED", seedf, text, len, pub, err, errlen) : -1;

        wipe_free(text, len);
        if (rc != 0)
            return -1;
        /* nats.c reads the seed from the file again to sign each nonce,
         * so it is not kept in memory between connects. */
        s = natsOptions_SetNKeyFromSeed(o, pub, seedf);
        describe(what, whatlen, "nkey %s (NATS_NKEY_SEED)", pub);
    } else if (credsf) {
        char pub[NRPC_NKEY_PUBLIC_LEN + 1];
        size_t len = 0;
        char *text = read_file("NATS_CREDS", credsf, &len, err, errlen);
        int rc = -1;

        if (text && strstr(text, "BEGIN NATS USER JWT") == NULL)
            fail(err, errlen, "NATS_CREDS: '%s' holds no user JWT (-----BEGIN NATS USER JWT-----)",
                 credsf);
        else if (text)
            rc = seed_public("NATS_CREDS", credsf, text, len, pub, err, errlen);
        wipe_free(text, len);
        if (rc != 0)
            return -1;
        s = natsOptions_SetUserCredentialsFromFiles(o, credsf, NULL);
        describe(what, whatlen, "credentials file %s (NATS_CREDS)", credsf);
    }
    if (s != NATS_OK)
        return fail(err, errlen, "%s: %s", set[0], nats_reason());
    return 0;
}

static int
apply_tls(natsOptions *o, char *what, size_t whatlen, char *err, size_t errlen)
{
    const char *ca = env("NATS_CA"), *cert = env("NATS_CERT"), *key = env("NATS_KEY");
    const char *host = env("NATS_TLS_HOSTNAME");
    natsStatus s;

    if ((cert || key) && !(cert && key))
        return fail(err, errlen, "%s is set without %s", cert ? "NATS_CERT" : "NATS_KEY",
                    cert ? "NATS_KEY" : "NATS_CERT");
    if (ca) {
        if (readable("NATS_CA", ca, err, errlen) != 0)
            return -1;
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(o, ca);
        if (s != NATS_OK)
            return fail(err, errlen, "NATS_CA: '%s': %s", ca, nats_reason());
        describe(what, whatlen, "TLS with the CA %s (NATS_CA)", ca);
    }
    if (cert) {
        if (readable("NATS_CERT", cert, err, errlen) != 0 ||
            readable("NATS_KEY", key, err, errlen) != 0)
            return -1;
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCertificatesChain(o, cert, key);
        if (s != NATS_OK)
            return fail(err, errlen, "NATS_CERT, NATS_KEY: '%s', '%s': %s", cert, key,
                        nats_reason());
        describe(what, whatlen, "client certificate %s (NATS_CERT)", cert);
    }
    if (host) {
        if (!ca && !cert)
            return fail(err, errlen, "NATS_TLS_HOSTNAME is set without NATS_CA or NATS_CERT");
        s = natsOptions_SetExpectedHostname(o, host);
        if (s != NATS_OK)
            return fail(err, errlen, "NATS_TLS_HOSTNAME: %s", nats_reason());
        describe(what, whatlen, "server name %s (NATS_TLS_HOSTNAME)", host);
    }
    return 0;
}

int
nrpc__nats_creds_apply(natsOptions *o, const char *url, char *what, size_t whatlen, char *err,
                       size_t errlen)
{
    what[0] = '\0';
    err[0] = '\0';
    if (apply_auth(o, url, what, whatlen, err, errlen) != 0 ||
        apply_tls(o, what, whatlen, err, errlen) != 0)
        return -1;
    if (what[0] == '\0')
        snprintf(what, whatlen, "no credentials");
    return 0;
}

void
nrpc__url_redact(const char *url, char *out, size_t len)
{
    size_t o = 0;
    const char *p = url;

    /* Per server of the list, the user information (user:pass in
     * scheme://user:pass@host) becomes three asterisks, so logs never carry
     * a password or token. */
    while (*p && o + 1 < len) {
        const char *end = strchr(p, ','), *at, *start = p, *sep;
        size_t item = end ? (size_t)(end - p) : strlen(p);

        at = NULL;
        for (const char *q = p; q < p + item; q++)
            if (*q == '@')
                at = q;
        sep = strstr(p, "://");
        if (at && sep && sep + 3 <= at)
            start = sep + 3; /* the scheme stays */
        if (at) {
            o += (size_t)snprintf(out + o, len - o, "%.*s***%.*s", (int)(start - p), p,
                                  (int)(p + item - at), at);
        } else {
            o += (size_t)snprintf(out + o, len - o, "%.*s", (int)item, p);
        }
        if (o >= len) {
            o = len - 1;
            break;
        }
        p += item;
        if (*p == ',') {
            if (o + 1 < len)
                out[o++] = ',';
            p++;
        }
    }
    out[o < len ? o : len - 1] = '\0';
}
