/* auth_loop.c: identifying a caller on one gateway loop.
 *
 * Static tokens and JWTs are checked at once on the loop (a hash lookup; a
 * signature check: an RS256 one made the gateway's CPU per request 3.5
 * times that of a static token, bench/auth, so a verified JWT's verdict is
 * cached, keyed by the token's SHA-256, for GW_AUTH_JWT_TTL_MS but never
 * past the instant the check itself would refuse it, exp plus the leeway).
 * Two checks take longer and run off the loop, their answer coming back to
 * it:
 *   - a Basic password: crypt_r of a bcrypt or yescrypt hash costs
 *     milliseconds by design, so it runs on libuv's thread pool;
 *   - the authorizer: an rpc on the loop's NATS client, fail-closed (no
 *     answer in time, no responders, NATS down: 503, and nothing cached).
 * Their verdicts are kept in the loop's cache (nrpc_table keyed by the
 * SHA-256 of the credentials, never the credentials themselves): Basic
 * successes for GW_AUTH_BASIC_TTL_MS, the authorizer's yes and no for its
 * ttl_s. While one of them runs, every caller with the same credentials
 * waits for its verdict rather than starting another (a page's burst of 64
 * requests with a new password is one bcrypt, not 64; a refused or failed
 * check answers them all too). The cache and the checks in flight take no
 * lock: they are the loop's.
 */
#include "auth_internal.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    nrpc_tnode node;
    unsigned char digest[GW_SHA256_LEN];
    int64_t expires_ms;
    int ok;
    char *sub, *scopes;
} cache_entry;

/* A caller waiting for a check in flight. */
typedef struct waiter {
    gw_principal *p;
    gw_auth_cb cb;
    void *closure;
    struct waiter *next;
} waiter;

/* A Basic check or an authorizer call in flight, in the loop's table by
 * the digest of the credentials; the first member of both jobs. */
typedef struct {
    nrpc_tnode node;
    unsigned char digest[GW_SHA256_LEN];
    waiter *waiters, **tail; /* in arrival order */
} check;

struct gw_auth_loop {
    const gw_auth *a;
    uv_loop_t *uv;
    nrpc_client *client; /* NULL once detached */
    gw_jwt_keys *keys;   /* this loop's copy: rhonabwy's keys are not shared */
    nrpc_table cache;
    nrpc_table checks; /* check, by digest */
    int pending;       /* thread-pool checks and authorizer calls not back yet */
    int freed;
};

/* ---- the cache ------------------------------------------------------------ */

static void
cache_entry_free(cache_entry *e)
{
    free(e->sub);
    free(e->scopes);
    free(e);
}

static cache_entry *
cache_get(gw_auth_loop *al, const unsigned char d[GW_SHA256_LEN])
{
    uint64_t key = gw_digest_key(d);
    nrpc_tnode *n;

    for (n = nrpc_table_get(&al->cache, key); n; n = nrpc_table_next(&al->cache, n, key)) {
        cache_entry *e = (cache_entry *)n;
        if (memcmp(e->digest, d, GW_SHA256_LEN) != 0)
            continue;
        if (e->expires_ms <= nrpc_now_ms()) {
            nrpc_table_remove(&al->cache, n);
            cache_entry_free(e);
            return NULL;
        }
        return e;
    }
    return NULL;
}

static void
cache_put(gw_auth_loop *al, const unsigned char d[GW_SHA256_LEN], int64_t ttl_ms,
          const gw_principal *p)
{
    cache_entry *e, *old;
    nrpc_tnode *n;

    if (ttl_ms <= 0 || al->freed)
        return;
    while ((old = cache_get(al, d)) != NULL) {
        nrpc_table_remove(&al->cache, &old->node);
        cache_entry_free(old);
    }
    /* Full: forget some. Whoever is dropped is asked again, nothing worse. */
    while (al->cache.count >= GW_AUTH_CACHE_MAX && (n = nrpc_table_take_any(&al->cache)))
        cache_entry_free((cache_entry *)n);
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return;
    memcpy(e->digest, d, GW_SHA256_LEN);
    e->expires_ms = nrpc_now_ms() + ttl_ms;
    e->ok = p->result == GW_ID_OK;
    e->sub = strdup(e->ok ? p->sub : "");
    e->scopes = strdup(e->ok ? p->scopes : p->why);
    if (e->sub == NULL || e->scopes == NULL || nrpc_table_put(&al->cache, &e->node,
                                                              gw_digest_key(d)) != 0)
        cache_entry_free(e);
}

static void
cache_fill(const cache_entry *e, gw_principal *p)
{
    if (e->ok) {
        p->result = GW_ID_OK;
        snprintf(p->sub, sizeof p->sub, "%s", e->sub);
        snprintf(p->scopes, sizeof p->scopes, "%s", e->scopes);
    } else {
        p->result = GW_ID_INVALID;
        snprintf(p->why, sizeof p->why, "%s", e->scopes);
    }
}

/* ---- checks in flight ---------------------------------------------------- */

static check *
check_find(gw_auth_loop *al, const unsigned char d[GW_SHA256_LEN])
{
    uint64_t key = gw_digest_key(d);

    for (nrpc_tnode *n = nrpc_table_get(&al->checks, key); n;
         n = nrpc_table_next(&al->checks, n, key))
        if (memcmp(((check *)n)->digest, d, GW_SHA256_LEN) == 0)
            return (check *)n;
    return NULL;
}

/* Adds a caller to k. -1: out of memory. */
static int
check_wait(check *k, gw_principal *p, gw_auth_cb cb, void *closure)
{
    waiter *w = calloc(1, sizeof *w);

    if (w == NULL)
        return -1;
    w->p = p;
    w->cb = cb;
    w->closure = closure;
    *k->tail = w;
    k->tail = &w->next;
    return 0;
}

/* Makes k (zeroed by its job's calloc) the check of d with its first
 * caller, in the loop's table. -1: out of memory. */
static int
check_begin(gw_auth_loop *al, check *k, const unsigned char d[GW_SHA256_LEN], gw_principal *p,
            gw_auth_cb cb, void *closure)
{
    memcpy(k->digest, d, GW_SHA256_LEN);
    k->tail = &k->waiters;
    if (check_wait(k, p, cb, closure) != 0)
        return -1;
    if (nrpc_table_put(&al->checks, &k->node, gw_digest_key(d)) != 0) {
        free(k->waiters);
        return -1;
    }
    return 0;
}

/* The verdict v for every caller of k, in order. k leaves the table first,
 * so a callback that identifies the same credentials again finds the cache
 * (or starts a new check), not this one. */
static void
check_end(gw_auth_loop *al, check *k, const gw_principal *v)
{
    waiter *w = k->waiters, *next;

    nrpc_table_remove(&al->checks, &k->node);
    k->waiters = NULL;
    for (; w; w = next) {
        next = w->next;
        *w->p = *v;
        w->cb(w->closure, w->p);
        free(w);
    }
}

/* An identification that waits: 0 when it joined the check of d in flight,
 * 1 when it is decided now (out of memory), -1 when there is none. */
static int
check_join(gw_auth_loop *al, const unsigned char d[GW_SHA256_LEN], gw_principal *p,
           gw_auth_cb cb, void *closure)
{
    check *k = check_find(al, d);

    if (k == NULL)
        return -1;
    if (check_wait(k, p, cb, closure) == 0)
        return 0;
    p->result = GW_ID_UNAVAILABLE;
    snprintf(p->why, sizeof p->why, "out of memory");
    return 1;
}

size_t
gw_auth_loop_checking(const gw_auth_loop *al)
{
    return al->checks.count;
}

/* ---- life ------------------------------------------------------------------ */

gw_auth_loop *
gw_auth_loop_new(const gw_auth *a, uv_loop_t *uv, nrpc_client *client)
{
    gw_auth_loop *al = calloc(1, sizeof *al);
    char err[256];

    if (al == NULL)
        return NULL;
    al->a = a;
    al->uv = uv;
    al->client = client;
    if (a->jwks_text && (al->keys = gw_jwt_keys_new(a->jwks_text, err, sizeof err)) == NULL) {
        nrpc_log(NRPC_LOG_ERROR, "auth: %s", err);
        free(al);
        return NULL;
    }
    return al;
}

const gw_auth *
gw_auth_loop_config(const gw_auth_loop *al)
{
    return al->a;
}

size_t
gw_auth_loop_cached(const gw_auth_loop *al)
{
    return al->cache.count;
}

void
gw_auth_loop_detach(gw_auth_loop *al)
{
    if (al)
        al->client = NULL;
}

static void
auth_loop_release(gw_auth_loop *al)
{
    nrpc_tnode *n;

    if (!al->freed || al->pending > 0)
        return;
    while ((n = nrpc_table_take_any(&al->cache)) != NULL)
        cache_entry_free((cache_entry *)n);
    nrpc_table_free(&al->cache);
    nrpc_table_free(&al->checks); /* empty: every check ended (pending is 0) */
    gw_jwt_keys_free(al->keys);
    free(al);
}

void
gw_auth_loop_free(gw_auth_loop *al)
{
    if (al == NULL)
        return;
    al->freed = 1;
    al->client = NULL;
    auth_loop_release(al);
}

/* ---- Basic, on the thread pool ---------------------------------------------- */

typedef struct {
    check k; /* first */
    uv_work_t work;
    gw_auth_loop *al;
    const gw_basic_entry *user; /* the file's, immutable */
    int decoy;                  /* user is the file's decoy: refused whatever crypt_r says */
    int ok;
    char pass[GW_CRED_MAX_BASIC + 1];
    struct crypt_data cd;
} basic_job;

static void
basic_work(uv_work_t *w)
{
    basic_job *j = w->data;
    const char *h;

    memset(&j->cd, 0, sizeof j->cd);
    h = crypt_r(j->pass, j->user->hash, &j->cd);
    /* The hash is not secret; a plain compare is fine. crypt_r's failure
     * token starts with '*', which no stored hash does. */
    j->ok = !j->decoy && h != NULL && h[0] != '*' && strcmp(h, j->user->hash) == 0;
}

static void
basic_done(uv_work_t *w, int status)
{
    basic_job *j = w->data;
    gw_auth_loop *al = j->al;
    gw_principal v = {.basic = 1};

    if (status == 0 && j->ok) {
        v.result = GW_ID_OK;
        snprintf(v.sub, sizeof v.sub, "%s", j->user->sub);
        snprintf(v.scopes, sizeof v.scopes, "%s", j->user->scopes);
        cache_put(al, j->k.digest, GW_AUTH_BASIC_TTL_MS, &v);
    } else {
        v.result = status == 0 ? GW_ID_INVALID : GW_ID_UNAVAILABLE;
        snprintf(v.why, sizeof v.why, "%s",
                 status == 0 ? "unknown user or wrong password" : "the check was canceled");
    }
    check_end(al, &j->k, &v);
    explicit_bzero(j->pass, sizeof j->pass);
    explicit_bzero(&j->cd, sizeof j->cd);
    free(j);
    al->pending--;
    auth_loop_release(al);
}

/* ---- the authorizer rpc ----------------------------------------------------- */

typedef struct {
    check k; /* first */
    gw_auth_loop *al;
    int basic; /* Basic credentials of no user in the file: the challenge says Basic */
} authz_job;

/* The reply [[principal], {}]: principal {"sub", "scopes"} lets the caller
 * in, null or false refuses it. An error 401 or 403 refuses too; any other
 * error means the authorizer could not decide: fail closed, cache nothing. */
static void
authz_reply(const nrpc_response *resp, void *closure)
{
    authz_job *j = closure;
    gw_auth_loop *al = j->al;
    gw_principal v = {.basic = j->basic}, *p = &v;
    int cache = 0;

    if (resp->code == 401 || resp->code == 403) {
        p->result = GW_ID_INVALID;
        snprintf(p->why, sizeof p->why, "the authorizer refused the credentials");
        cache = 1;
    } else if (resp->code != 0) {
        p->result = GW_ID_UNAVAILABLE;
        snprintf(p->why, sizeof p->why, "the authorizer %s did not answer (%d)",
                 al->a->authorizer_rpc, resp->code);
    } else {
        json_t *r = json_loadb(resp->data, resp->len, 0, NULL);
        json_t *args = json_array_get(r, 0);
        /* Anything but [[principal or null], ...] is no verdict (an
         * authorizer that is not natsrpc may answer anything): 503, kept
         * nowhere, rather than a refusal cached for ttl_s. */
        json_t *who = json_is_array(args) && json_array_size(args) > 0 ? json_array_get(args, 0)
                                                                         : NULL;
        const char *sub = json_string_value(json_object_get(who, "sub"));
        json_t *scopes = json_object_get(who, "scopes");

        cache = 1;
        if (json_is_object(who) && sub && *sub && strlen(sub) <= GW_AUTH_MAX_SUB &&
            (scopes == NULL || (json_is_array(scopes) &&
                                gw_scopes_join(scopes, p->scopes, sizeof p->scopes) == 0))) {
            if (scopes == NULL)
                p->scopes[0] = '\0';
            p->result = GW_ID_OK;
            snprintf(p->sub, sizeof p->sub, "%s", sub);
        } else if (who != NULL && (json_is_null(who) || json_is_false(who))) {
            p->result = GW_ID_INVALID;
            snprintf(p->why, sizeof p->why, "the authorizer refused the credentials");
        } else {
            p->result = GW_ID_UNAVAILABLE;
            snprintf(p->why, sizeof p->why,
                     "the authorizer %s answered something else than a principal or null",
                     al->a->authorizer_rpc);
            cache = 0;
        }
        json_decref(r);
    }
    if (cache)
        cache_put(al, j->k.digest, al->a->authorizer_ttl_ms, p);
    check_end(al, &j->k, p);
    free(j);
    al->pending--;
    auth_loop_release(al);
}

/* Returns 1 when p is decided now, 0 when authz_reply will decide it. */
static int
authz_ask(gw_auth_loop *al, const char *header, const unsigned char d[GW_SHA256_LEN],
          gw_principal *p, gw_auth_cb cb, void *closure)
{
    const cache_entry *e = cache_get(al, d);
    authz_job *j;
    json_t *body;
    char *text;
    nrpc_status st = NRPC_ERR_STATE;
    int joined;

    if (e != NULL) {
        cache_fill(e, p);
        return 1;
    }
    if ((joined = check_join(al, d, p, cb, closure)) >= 0)
        return joined;
    p->result = GW_ID_UNAVAILABLE;
    snprintf(p->why, sizeof p->why, "the authorizer cannot be asked: NATS is not connected");
    if (al->client == NULL || (j = calloc(1, sizeof *j)) == NULL)
        return 1;
    body = json_pack("[[], {s:s}]", "authorization", header);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    j->al = al;
    j->basic = p->basic;
    if (text && check_begin(al, &j->k, d, p, cb, closure) == 0) {
        st = nrpc_client_request(al->client, al->a->authorizer_rpc, text, strlen(text),
                                 al->a->authorizer_timeout_ms, NULL, authz_reply, j);
        if (st != NRPC_OK) {
            nrpc_table_remove(&al->checks, &j->k.node);
            free(j->k.waiters);
        }
    }
    free(text);
    if (st != NRPC_OK) {
        free(j);
        return 1;
    }
    al->pending++;
    return 0;
}

/* ---- identification ---------------------------------------------------------- */

static int
decided_invalid(gw_principal *p, const char *why)
{
    p->result = GW_ID_INVALID;
    snprintf(p->why, sizeof p->why, "%s", why);
    return 1;
}

/* Basic credentials c (the header's, wiped here) checked against user's
 * hash on the thread pool, from the cache or joining the same check in
 * flight. decoy: user is not the one named, and the answer is a refusal
 * that took as long as a check. Returns 1 when p is decided now, 0 when
 * basic_done will decide it. */
static int
basic_ask(gw_auth_loop *al, const char *header, gw_cred *c, const gw_basic_entry *user, int decoy,
          gw_principal *p, gw_auth_cb cb, void *closure)
{
    unsigned char d[GW_SHA256_LEN];
    const cache_entry *hit;
    basic_job *j;
    int joined;

    /* The cache key covers user and password: "Basic <base64>" is exactly
     * that. */
    gw_sha256(header, strlen(header), d);
    if ((hit = cache_get(al, d)) != NULL) {
        explicit_bzero(c->buf, sizeof c->buf);
        cache_fill(hit, p);
        return 1;
    }
    if ((joined = check_join(al, d, p, cb, closure)) >= 0) {
        explicit_bzero(c->buf, sizeof c->buf);
        return joined;
    }
    j = calloc(1, sizeof *j);
    if (j == NULL || check_begin(al, &j->k, d, p, cb, closure) != 0) {
        free(j);
        explicit_bzero(c->buf, sizeof c->buf);
        p->result = GW_ID_UNAVAILABLE;
        snprintf(p->why, sizeof p->why, "out of memory");
        return 1;
    }
    memcpy(j->pass, c->pass, strlen(c->pass) + 1);
    explicit_bzero(c->buf, sizeof c->buf);
    j->al = al;
    j->user = user;
    j->decoy = decoy;
    j->work.data = j;
    if (uv_queue_work(al->uv, &j->work, basic_work, basic_done) != 0) {
        explicit_bzero(j->pass, sizeof j->pass);
        nrpc_table_remove(&al->checks, &j->k.node);
        free(j->k.waiters);
        free(j);
        p->result = GW_ID_UNAVAILABLE;
        snprintf(p->why, sizeof p->why, "cannot check the password now");
        return 1;
    }
    al->pending++;
    return 0;
}

int
gw_auth_identify(gw_auth_loop *al, const char *header, gw_principal *p, gw_auth_cb cb,
                 void *closure)
{
    const gw_auth *a = al->a;
    unsigned char d[GW_SHA256_LEN];
    const char *why = NULL;
    gw_cred c;
    nrpc_tnode *n;

    p->result = GW_ID_ANONYMOUS;
    p->basic = 0;
    p->exp = 0;
    p->sub[0] = p->scopes[0] = p->why[0] = '\0';
    switch (gw_cred_parse(header, &c, &why)) {
    case GW_CRED_NONE: return 1;
    case GW_CRED_MALFORMED: return decided_invalid(p, why);
    case GW_CRED_BEARER:
        gw_sha256(c.token, c.token_len, d);
        for (n = nrpc_table_get(&a->tokens, gw_digest_key(d)); n;
             n = nrpc_table_next(&a->tokens, n, gw_digest_key(d))) {
            const gw_token_entry *e = (const gw_token_entry *)n;
            if (memcmp(e->digest, d, GW_SHA256_LEN) == 0) {
                p->result = GW_ID_OK;
                snprintf(p->sub, sizeof p->sub, "%s", e->sub);
                snprintf(p->scopes, sizeof p->scopes, "%s", e->scopes);
                return 1;
            }
        }
        if (al->keys && gw_cred_is_jwt(c.token, c.token_len)) {
            /* d is the token's digest: other verdicts are keyed by the
             * whole header ("Bearer ...", "Basic ..."), which has a space
             * no token has, so the keys never meet. Only successes are
             * cached: a refused token is checked again. */
            const cache_entry *hit = cache_get(al, d);
            struct timespec ts;

            if (hit != NULL) {
                cache_fill(hit, p);
                return 1;
            }
            clock_gettime(CLOCK_REALTIME, &ts);
            if (gw_jwt_check(a, al->keys, c.token, c.token_len, (int64_t)ts.tv_sec, p) ==
                GW_ID_OK) {
                int64_t left = GW_AUTH_JWT_TTL_MS;

                /* An exp far in the future is just the TTL (and no overflow). */
                if (p->exp < INT64_MAX / 1000 - GW_AUTH_JWT_LEEWAY_S - GW_AUTH_JWT_TTL_MS) {
                    int64_t until = (p->exp + GW_AUTH_JWT_LEEWAY_S) * 1000 -
                                    ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
                    if (until < left)
                        left = until;
                }
                cache_put(al, d, left, p);
                return 1;
            }
            if (a->authorizer_rpc == NULL)
                return 1;
        }
        if (a->authorizer_rpc) {
            gw_sha256(header, strlen(header), d);
            return authz_ask(al, header, d, p, cb, closure);
        }
        return p->result == GW_ID_INVALID ? 1 : decided_invalid(p, "unknown bearer token");
    case GW_CRED_BASIC:
        p->basic = 1;
        for (n = nrpc_table_get(&a->basic, nrpc_hash_str(c.user)); n;
             n = nrpc_table_next(&a->basic, n, nrpc_hash_str(c.user)))
            if (strcmp(((const gw_basic_entry *)n)->user, c.user) == 0)
                return basic_ask(al, header, &c, (const gw_basic_entry *)n, 0, p, cb, closure);
        if (a->authorizer_rpc) {
            explicit_bzero(c.buf, sizeof c.buf);
            gw_sha256(header, strlen(header), d);
            return authz_ask(al, header, d, p, cb, closure);
        }
        if (a->decoy && al->uv)
            return basic_ask(al, header, &c, a->decoy, 1, p, cb, closure);
        explicit_bzero(c.buf, sizeof c.buf);
        return decided_invalid(p, "unknown user or wrong password");
    }
    return decided_invalid(p, "unreadable credentials");
}

/* ---- what the loop sends on and decides -------------------------------------- */

char *
gw_principal_header(const gw_principal *p)
{
    json_t *o, *arr;
    const char *s;
    char *text;

    if (p == NULL || p->result != GW_ID_OK)
        return NULL;
    arr = json_array();
    for (s = p->scopes; *s;) {
        size_t n = strcspn(s, " ");
        if (n > 0)
            json_array_append_new(arr, json_stringn(s, n));
        s += n;
        while (*s == ' ')
            s++;
    }
    o = json_pack("{s:s, s:o}", "sub", p->sub, "scopes", arr);
    /* ASCII only: a NATS header value is a line of text. */
    text = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    return text;
}

int
gw_auth_decide(const char *access, const gw_principal *p, const char *subject, char *msg,
               size_t msglen)
{
    switch (p->result) {
    case GW_ID_UNAVAILABLE:
        snprintf(msg, msglen, "cannot check the credentials now: %s", p->why);
        return 503;
    case GW_ID_INVALID:
        snprintf(msg, msglen, "invalid credentials: %s", p->why);
        return 401;
    case GW_ID_ANONYMOUS:
        if (access != NULL && strcmp(access, NRPC_PUBLIC) == 0)
            return 0;
        snprintf(msg, msglen, "%.256s needs credentials (Authorization: Bearer or Basic)",
                 subject);
        return 401;
    case GW_ID_OK: break;
    }
    if (!nrpc_access_allows(access, p->scopes, strlen(p->scopes))) {
        snprintf(msg, msglen, "%.256s needs the scopes '%.200s'; %.100s has '%.200s'", subject,
                 access, p->sub, p->scopes);
        return 403;
    }
    return 0;
}
