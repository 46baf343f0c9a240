/* test_gw_auth.c: the gateway's auth pieces without I/O: the Authorization
 * header, base64, the decision (401, 403, 503), the principal header, the
 * access map built from INFO replies, and identification by static token
 * and by JWT with the loop's cache of verified JWTs (neither needs a
 * loop). */
#include "auth/auth.h"
#include "auth/auth_internal.h"
#include "check.h"

#include <crypt.h>
#include <uv.h>

#include <rhonabwy.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
test_header(void)
{
    const char *why = NULL;
    gw_cred c;
    unsigned char out[16];

    CHECK_INT(gw_cred_parse(NULL, &c, &why), GW_CRED_NONE);
    CHECK_INT(gw_cred_parse("Bearer abc.DEF-_~+/==", &c, &why), GW_CRED_BEARER);
    CHECK_INT(c.token_len, 14);
    CHECK(strncmp(c.token, "abc.DEF-_~+/==", 14) == 0);
    CHECK_INT(gw_cred_parse("bEaReR   tok", &c, &why), GW_CRED_BEARER); /* case, spaces */
    CHECK_INT(c.token_len, 3);
    CHECK_INT(gw_cred_parse("Basic Ym9iOnNlY3I6ZXQ=", &c, &why), GW_CRED_BASIC); /* bob:secr:et */
    CHECK_STR(c.user, "bob");
    CHECK_STR(c.pass, "secr:et"); /* the first ':' splits */
    CHECK_INT(gw_cred_parse("Basic Ym9iOg==", &c, &why), GW_CRED_BASIC); /* empty password */
    CHECK_STR(c.pass, "");
    {
        static const char *const bad[] = {
            "", "Bearer", "Bearer ", "Bearer a b", "Bearer =abc", "Bearer a\"b", "Basic",
            "Basic Ym9i",        /* "bob": no ':' */
            "Basic OnB3",        /* ":pw": no user */
            "Basic Ym9iOmJvYi1wdw", /* no padding */
            "Basic Ym9i=Om==",   /* data after '=' */
            "Basic AQ==",        /* a control character */
            "Digest x", "Token abc", " Bearer abc",
        };
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            why = NULL;
            if (gw_cred_parse(bad[i], &c, &why) != GW_CRED_MALFORMED)
                fprintf(stderr, "should be malformed: '%s'\n", bad[i]);
            CHECK_INT(c.kind, GW_CRED_MALFORMED);
            CHECK(why != NULL);
        }
    }
    {
        char *big = malloc(GW_AUTH_MAX_HEADER + 2);
        memcpy(big, "Bearer ", 7);
        memset(big + 7, 'a', GW_AUTH_MAX_HEADER - 7);
        big[GW_AUTH_MAX_HEADER] = '\0';
        CHECK_INT(gw_cred_parse(big, &c, &why), GW_CRED_BEARER); /* at the limit */
        big[GW_AUTH_MAX_HEADER] = 'a';
        big[GW_AUTH_MAX_HEADER + 1] = '\0';
        CHECK_INT(gw_cred_parse(big, &c, &why), GW_CRED_MALFORMED); /* one past */
        free(big);
    }
    CHECK_INT(gw_base64_decode("YWJj", 4, out, sizeof out), 3);
    CHECK_INT(gw_base64_decode("YWI=", 4, out, sizeof out), 2);
    CHECK_INT(gw_base64_decode("YQ==", 4, out, sizeof out), 1);
    CHECK_INT(gw_base64_decode("YQ=", 3, out, sizeof out), -1);
    CHECK_INT(gw_base64_decode("Y===", 4, out, sizeof out), -1);
    CHECK_INT(gw_base64_decode("YWJjYWJjYWJjYWJjYWJj", 20, out, 4), -1); /* too long for out */
    CHECK(gw_cred_is_jwt("a.b.c", 5));
    CHECK(!gw_cred_is_jwt("a.b.", 4));
    CHECK(!gw_cred_is_jwt("a..c", 4));
    CHECK(!gw_cred_is_jwt("a.b.c.d", 7));
    CHECK(!gw_cred_is_jwt("a.b+.c", 6));
}

static void
test_decide(void)
{
    gw_principal p = {0};
    char msg[640];

    p.result = GW_ID_ANONYMOUS;
    CHECK_INT(gw_auth_decide("public", &p, "s.m", msg, sizeof msg), 0);
    CHECK_INT(gw_auth_decide("authenticated", &p, "s.m", msg, sizeof msg), 401);
    CHECK_INT(gw_auth_decide(NULL, &p, "s.m", msg, sizeof msg), 401); /* unknown rpc */
    CHECK_STR(msg, "s.m needs credentials (Authorization: Bearer or Basic)");
    p.result = GW_ID_INVALID;
    strcpy(p.why, "nope");
    CHECK_INT(gw_auth_decide("public", &p, "s.m", msg, sizeof msg), 401);
    CHECK_STR(msg, "invalid credentials: nope");
    p.result = GW_ID_UNAVAILABLE;
    CHECK_INT(gw_auth_decide("public", &p, "s.m", msg, sizeof msg), 503);
    p.result = GW_ID_OK;
    strcpy(p.sub, "alice");
    strcpy(p.scopes, "a things:write");
    CHECK_INT(gw_auth_decide("authenticated", &p, "s.m", msg, sizeof msg), 0);
    CHECK_INT(gw_auth_decide(NULL, &p, "s.m", msg, sizeof msg), 0);
    CHECK_INT(gw_auth_decide("things:write", &p, "s.m", msg, sizeof msg), 0);
    CHECK_INT(gw_auth_decide("things:write admin", &p, "s.m", msg, sizeof msg), 403);
    CHECK_STR(msg, "s.m needs the scopes 'things:write admin'; alice has 'a things:write'");
}

static void
test_principal_header(void)
{
    gw_principal p = {0};
    char *h;

    CHECK(gw_principal_header(&p) == NULL); /* anonymous: none */
    p.result = GW_ID_OK;
    strcpy(p.sub, "z\xc3\xa9\"\n");
    strcpy(p.scopes, "a b:c");
    h = gw_principal_header(&p);
    CHECK_STR(h, "{\"sub\":\"z\\u00E9\\\"\\n\",\"scopes\":[\"a\",\"b:c\"]}");
    free(h);
    p.scopes[0] = '\0';
    h = gw_principal_header(&p);
    CHECK_STR(h, "{\"sub\":\"z\\u00E9\\\"\\n\",\"scopes\":[]}");
    free(h);
}

static void
test_access_map(void)
{
    json_t *infos = json_loads(
        "[{\"endpoints\": ["
        " {\"subject\": \"s.pub\", \"metadata\": {\"access\": \"public\"}},"
        " {\"subject\": \"s.old\", \"metadata\": {}},"
        " {\"subject\": \"s.bad\", \"metadata\": {\"access\": \"a  b\"}},"
        " {\"subject\": \"s.roll\", \"metadata\": {\"access\": \"public\"}},"
        " {\"subject\": \"s.move\", \"metadata\": {\"access\": \"t:read\"}},"
        " {\"subject\": \"s.more\", \"metadata\": {\"access\": \"a b\"}},"
        " {\"subject\": \"$SRV.x\", \"metadata\": {\"access\": \"public\"}}]},"
        " {\"endpoints\": ["
        " {\"subject\": \"s.roll\", \"metadata\": {\"access\": \"w\"}},"
        " {\"subject\": \"s.move\", \"metadata\": {\"access\": \"t:edit\"}},"
        " {\"subject\": \"s.more\", \"metadata\": {\"access\": \"authenticated\"}},"
        " {\"subject\": \"s.more\", \"metadata\": {\"access\": \"b c\"}},"
        " {\"subject\": \"s.pub\", \"metadata\": {\"access\": \"public\"}}]},"
        " {\"endpoints\": 3}, 7]",
        0, NULL);
    gw_access_map *m = gw_access_map_build(infos);

    CHECK(m != NULL);
    CHECK_STR(gw_access_map_get(m, "s.pub", 5), "public");
    CHECK_STR(gw_access_map_get(m, "s.old", 5), "authenticated");
    CHECK_STR(gw_access_map_get(m, "s.bad", 5), "authenticated");
    CHECK_STR(gw_access_map_get(m, "s.roll", 6), "w"); /* replicas disagree: the stricter */
    /* Two replicas naming different scopes: every scope either names is
     * needed, whichever answered the gather first. */
    CHECK_STR(gw_access_map_get(m, "s.move", 6), "t:read t:edit");
    CHECK_STR(gw_access_map_get(m, "s.more", 6), "a b c");
    CHECK(gw_access_map_get(m, "$SRV.x", 6) == NULL);
    CHECK(gw_access_map_get(m, "s.pubx", 5) != NULL); /* len bytes only */
    CHECK(gw_access_map_get(m, "s.nope", 6) == NULL);
    CHECK(gw_access_map_get(NULL, "s.pub", 5) == NULL);
    CHECK(gw_access_map_ref(m) == m);
    gw_access_map_unref(m);
    gw_access_map_unref(m);
    gw_access_map_unref(NULL);
    json_decref(infos);
}

/* ---- checks in flight are shared ---- */

static int basic_answers;

static void
on_basic(void *closure, gw_principal *p)
{
    int *want = closure;

    CHECK_INT(p->result, *want);
    CHECK_INT(p->basic, 1);
    if (p->result == GW_ID_OK)
        CHECK_STR(p->sub, "bob");
    basic_answers++;
}

/* Callers with the same Basic credentials while a check runs wait for its
 * verdict: one bcrypt for all of them, good or bad, and the next caller
 * (after it) is answered from the cache. */
static void
test_basic_checks_shared(void)
{
    struct crypt_data cd;
    char salt[64], file[512], err[256], header[128];
    const char *hash;
    gw_auth *a = NULL;
    gw_auth_loop *al;
    gw_principal ps[41];
    uv_loop_t uv;
    int ok = GW_ID_OK, bad = GW_ID_INVALID;

    memset(&cd, 0, sizeof cd);
    CHECK(crypt_gensalt_rn("$2b$", 6, NULL, 0, salt, sizeof salt) != NULL);
    hash = crypt_r("bob-pw", salt, &cd);
    CHECK(hash != NULL && hash[0] == '$');
    snprintf(file, sizeof file, "{\"basic\": {\"bob\": {\"hash\": \"%s\"}}}", hash);
    CHECK_INT(gw_auth_parse(file, strlen(file), NULL, &a, err, sizeof err), 0);
    CHECK_INT(uv_loop_init(&uv), 0);
    al = gw_auth_loop_new(a, &uv, NULL);
    CHECK(al != NULL);

    basic_answers = 0;
    for (int i = 0; i < 20; i++)
        CHECK_INT(gw_auth_identify(al, "Basic Ym9iOmJvYi1wdw==", &ps[i], on_basic, &ok), 0);
    snprintf(header, sizeof header, "Basic Ym9iOndyb25n"); /* bob:wrong */
    for (int i = 20; i < 40; i++)
        CHECK_INT(gw_auth_identify(al, header, &ps[i], on_basic, &bad), 0);
    CHECK_INT(gw_auth_loop_checking(al), 2);
    CHECK_INT(basic_answers, 0);
    uv_run(&uv, UV_RUN_DEFAULT);
    CHECK_INT(basic_answers, 40);
    CHECK_INT(gw_auth_loop_checking(al), 0);
    CHECK_INT(gw_auth_loop_cached(al), 1); /* the good one */
    CHECK_INT(gw_auth_identify(al, "Basic Ym9iOmJvYi1wdw==", &ps[40], NULL, NULL), 1);
    CHECK_INT(ps[40].result, GW_ID_OK);
    CHECK_INT(gw_auth_identify(al, header, &ps[40], on_basic, &bad), 0); /* a refusal is not kept */
    uv_run(&uv, UV_RUN_DEFAULT);
    CHECK_INT(basic_answers, 41);
    /* A name nobody has costs a check too (against another user's hash,
     * refused whatever it gives), with bob's very password: the time of the
     * answer does not tell which names exist. */
    CHECK_INT(gw_auth_identify(al, "Basic bm9ib2R5OmJvYi1wdw==", &ps[40], on_basic, &bad), 0);
    CHECK_INT(gw_auth_loop_checking(al), 1);
    uv_run(&uv, UV_RUN_DEFAULT);
    CHECK_INT(basic_answers, 42);
    CHECK_STR(ps[40].why, "unknown user or wrong password");
    CHECK_INT(gw_auth_loop_cached(al), 1);
    gw_auth_loop_free(al);
    uv_run(&uv, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&uv), 0);
    gw_auth_free(a);
}

static void
test_tokens(void)
{
    const char *text = "{\"tokens\": {\"0123456789abcdef-token\": {\"sub\": \"t\", "
                       "\"scopes\": [\"x\", \"y\"]}}}";
    gw_auth *a = NULL;
    gw_auth_loop *al;
    gw_principal p;
    char err[256];

    CHECK_INT(gw_auth_parse(text, strlen(text), NULL, &a, err, sizeof err), 0);
    CHECK_STR(gw_auth_challenge(a, 0), "Bearer realm=\"natsrpc\"");
    al = gw_auth_loop_new(a, NULL, NULL);
    CHECK(al != NULL);
    CHECK_INT(gw_auth_identify(al, "Bearer 0123456789abcdef-token", &p, NULL, NULL), 1);
    CHECK_INT(p.result, GW_ID_OK);
    CHECK_STR(p.sub, "t");
    CHECK_STR(p.scopes, "x y");
    CHECK_INT(gw_auth_identify(al, "Bearer 0123456789abcdef-tokem", &p, NULL, NULL), 1);
    CHECK_INT(p.result, GW_ID_INVALID);
    CHECK_INT(gw_auth_identify(al, NULL, &p, NULL, NULL), 1);
    CHECK_INT(p.result, GW_ID_ANONYMOUS);
    CHECK_INT(gw_auth_identify(al, "Basic Ym9iOng=", &p, NULL, NULL), 1); /* no Basic users */
    CHECK_INT(p.result, GW_ID_INVALID);
    gw_auth_loop_free(al);
    gw_auth_free(a);
}

/* ---- JWTs and their cache ---------------------------------------------- */

#define JWT_KEY "{\"kty\": \"oct\", \"alg\": \"HS256\", " \
                "\"k\": \"c2VjcmV0LWtleS1vZi10aGUtand0LWNhY2hlLXRlc3Qh\"}"

/* An HS256 JWT of the test's key (or of another when wrong_key): new (free). */
static char *
jwt_make(const char *sub, int64_t exp, int wrong_key)
{
    jwk_t *jwk = NULL;
    jwt_t *jwt = NULL;
    char claims[512], *tok;

    r_jwk_init(&jwk);
    r_jwk_import_from_json_str(jwk, wrong_key ? "{\"kty\": \"oct\", \"alg\": \"HS256\", "
                                                "\"k\": \"b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXkh\"}"
                                              : JWT_KEY);
    r_jwt_init(&jwt);
    r_jwt_set_sign_alg(jwt, R_JWA_ALG_HS256);
    snprintf(claims, sizeof claims,
             "{\"iss\": \"https://iss.test\", \"aud\": \"gw\", \"sub\": \"%s\", "
             "\"exp\": %lld, \"scope\": \"x y\"}",
             sub, (long long)exp);
    r_jwt_set_full_claims_json_str(jwt, claims);
    tok = r_jwt_serialize_signed(jwt, jwk, 0);
    r_jwt_free(jwt);
    r_jwk_free(jwk);
    return tok;
}

static gw_id_result
jwt_identify(gw_auth_loop *al, const char *tok, gw_principal *p)
{
    char header[1024];

    snprintf(header, sizeof header, "Bearer %s", tok);
    CHECK_INT(gw_auth_identify(al, header, p, NULL, NULL), 1);
    return p->result;
}

static void
test_jwt_cache(void)
{
    char dir[] = "/tmp/test_gw_auth_XXXXXX", path[64], err[256];
    const char *text = "{\"jwt\": {\"jwks_file\": \"jwks.json\", \"issuer\": "
                       "\"https://iss.test\", \"audience\": \"gw\"}}";
    int64_t now = (int64_t)time(NULL);
    gw_auth *a = NULL;
    gw_auth_loop *al;
    gw_principal p;
    char *tok;
    FILE *f;
    size_t i;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "{\"keys\": [%s]}", JWT_KEY);
    fclose(f);
    CHECK_INT(gw_auth_parse(text, strlen(text), dir, &a, err, sizeof err), 0);
    unlink(path);
    rmdir(dir);
    al = gw_auth_loop_new(a, NULL, NULL);
    CHECK(al != NULL);

    /* A good token: checked, then answered from the cache, the same. */
    tok = jwt_make("alice", now + 600, 0);
    CHECK_INT(jwt_identify(al, tok, &p), GW_ID_OK);
    CHECK_STR(p.sub, "alice");
    CHECK_STR(p.scopes, "x y");
    CHECK_INT(gw_auth_loop_cached(al), 1);
    CHECK_INT(jwt_identify(al, tok, &p), GW_ID_OK);
    CHECK_STR(p.sub, "alice");
    CHECK_STR(p.scopes, "x y");
    CHECK_INT(gw_auth_loop_cached(al), 1);
    free(tok);

    /* Refused tokens are not cached: each is checked again. */
    tok = jwt_make("mallory", now + 600, 1);
    CHECK_INT(jwt_identify(al, tok, &p), GW_ID_INVALID);
    CHECK_INT(jwt_identify(al, tok, &p), GW_ID_INVALID);
    CHECK_INT(gw_auth_loop_cached(al), 1);
    free(tok);
    tok = jwt_make("late", now - GW_AUTH_JWT_LEEWAY_S - 5, 0);
    CHECK_INT(jwt_identify(al, tok, &p), GW_ID_INVALID);
    CHECK_INT(gw_auth_loop_cached(al), 1);
    free(tok);

    /* A token inside the leeway for one or two more seconds: accepted and
     * cached, then refused once exp plus the leeway has passed, cache or
     * not (the cache keeps it no longer than the check would accept it). */
    tok = jwt_make("soon", now - GW_AUTH_JWT_LEEWAY_S + 2, 0);
    CHECK_INT(jwt_identify(al, tok, &p), GW_ID_OK);
    CHECK_INT(gw_auth_loop_cached(al), 2);
    {
        int refused = 0;
        for (i = 0; i < 100 && !refused; i++) { /* up to 10 s: waits for the clock */
            refused = jwt_identify(al, tok, &p) == GW_ID_INVALID;
            if (!refused)
                usleep(100 * 1000);
        }
        CHECK(refused);
        CHECK_STR(p.why, "the JWT has expired");
    }
    free(tok);

    /* Bounded: more distinct good tokens than the cache holds. */
    for (i = 0; i < GW_AUTH_CACHE_MAX + 50; i++) {
        char sub[32];
        snprintf(sub, sizeof sub, "u%zu", i);
        tok = jwt_make(sub, now + 600, 0);
        CHECK_INT(jwt_identify(al, tok, &p), GW_ID_OK);
        CHECK_STR(p.sub, sub);
        free(tok);
    }
    CHECK(gw_auth_loop_cached(al) <= GW_AUTH_CACHE_MAX);
    CHECK(gw_auth_loop_cached(al) > GW_AUTH_CACHE_MAX / 2);

    /* An exp far away is cached for the TTL, without overflow (UBSan). */
    tok = jwt_make("forever", INT64_C(9000000000000000000), 0);
    CHECK_INT(jwt_identify(al, tok, &p), GW_ID_OK);
    CHECK_INT(jwt_identify(al, tok, &p), GW_ID_OK);
    CHECK_STR(p.sub, "forever");
    free(tok);

    gw_auth_loop_free(al);
    gw_auth_free(a);
}

/* Who may subscribe and publish on topics: declarations, file rules and
 * defaults, whole verdicts compared. */
static void
test_topic_access(void)
{
    json_t *infos = json_loads(
        "[{\"name\": \"ts\", \"metadata\": {"
        "  \"emits\": \"[{\\\"subject\\\": \\\"events.ts.made\\\", \\\"access\\\": \\\"public\\\"},"
        "               {\\\"subject\\\": \\\"events.ts.secret\\\", \\\"access\\\": \\\"s:read\\\"},"
        "               {\\\"subject\\\": \\\"events.other.stolen\\\", \\\"access\\\": \\\"public\\\"}]\","
        "  \"topics\": \"[{\\\"subject\\\": \\\"events.ts.chat\\\", \\\"access\\\": \\\"public\\\","
        "                \\\"publish\\\": \\\"events:publish\\\"},"
        "               {\\\"subject\\\": \\\"events.ts.roll\\\", \\\"access\\\": \\\"public\\\","
        "                \\\"publish\\\": \\\"public\\\"}]\"},"
        "  \"endpoints\": []},"
        " {\"name\": \"ts\", \"metadata\": {"
        "  \"topics\": \"[{\\\"subject\\\": \\\"events.ts.roll\\\", \\\"access\\\": \\\"public\\\"}]\"},"
        "  \"endpoints\": []},"
        " {\"name\": \"bad\", \"metadata\": {\"emits\": \"not json\", \"topics\": \"{}\"}},"
        " {\"name\": \"a.b\"}, {\"name\": 5}]",
        0, NULL);
    static const char file[] =
        "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}},"
        " \"topics\": {\"chat.>\": {\"subscribe\": \"public\", \"publish\": \"chat:write\"},"
        "  \"chat.admin\": {\"subscribe\": \"admin\", \"publish\": false},"
        "  \"news\": {\"subscribe\": \"public\"},"
        "  \"ts.made\": {\"subscribe\": \"authenticated\"},"
        "  \"ts.chat\": {\"publish\": \"chat:write\"}}}";
    gw_access_map *m = gw_access_map_build(infos);
    gw_auth *a = NULL;
    char out[NRPC_MAX_ACCESS + 1], err[256];
#define TA(map, auth, topic, prefix, op, verdict, want)                                            \
    do {                                                                                           \
        out[0] = '\0';                                                                             \
        CHECK_INT(gw_topic_access(map, auth, topic, prefix, op, out, sizeof out), verdict);       \
        CHECK_STR(out, want);                                                                      \
    } while (0)
    const int S = GW_TOPIC_SUBSCRIBE, P = GW_TOPIC_PUBLISH;

    CHECK(m != NULL);
    /* No file: declarations and defaults. */
    TA(m, NULL, "ts.made", 0, S, GW_TOPIC_KNOWN, "public");
    TA(m, NULL, "ts.made", 0, P, GW_TOPIC_NOBODY, ""); /* an emitted event: the service's */
    TA(m, NULL, "ts.secret", 0, S, GW_TOPIC_KNOWN, "s:read");
    TA(m, NULL, "ts.chat", 0, P, GW_TOPIC_KNOWN, "events:publish");
    TA(m, NULL, "ts.roll", 0, P, GW_TOPIC_NOBODY, ""); /* one replica says nobody */
    TA(m, NULL, "ts.undeclared", 0, S, GW_TOPIC_KNOWN, "authenticated");
    TA(m, NULL, "ts.undeclared", 0, P, GW_TOPIC_NOBODY, ""); /* a service's space */
    TA(m, NULL, "ts", 0, P, GW_TOPIC_NOBODY, "");
    TA(m, NULL, "other.stolen", 0, S, GW_TOPIC_UNKNOWN, ""); /* not ts's to declare */
    TA(m, NULL, "other.stolen", 0, P, GW_TOPIC_KNOWN, "events:publish");
    TA(m, NULL, "free.topic", 0, S, GW_TOPIC_UNKNOWN, "");
    TA(m, NULL, "bad.x", 0, P, GW_TOPIC_NOBODY, ""); /* "bad" is a service all the same */
    TA(m, NULL, "ts", 1, S, GW_TOPIC_KNOWN, "s:read"); /* the strictest under it */
    TA(m, NULL, "free", 1, S, GW_TOPIC_KNOWN, "authenticated");
    TA(m, NULL, "ts", 1, P, GW_TOPIC_NOBODY, "");
    TA(NULL, NULL, "ts.made", 0, S, GW_TOPIC_UNKNOWN, ""); /* no catalog yet */
    TA(NULL, NULL, "ts", 1, S, GW_TOPIC_UNKNOWN, "");
    TA(NULL, NULL, "ts.made", 0, P, GW_TOPIC_KNOWN, "events:publish");

    /* With the file's rules. */
    CHECK_INT(gw_auth_parse(file, sizeof file - 1, NULL, &a, err, sizeof err), 0);
    TA(m, a, "chat.room", 0, S, GW_TOPIC_KNOWN, "public");
    TA(m, a, "chat.room.deep", 0, P, GW_TOPIC_KNOWN, "chat:write");
    TA(m, a, "chat.admin", 0, S, GW_TOPIC_KNOWN, "admin"); /* exact beats prefix */
    TA(m, a, "chat.admin", 0, P, GW_TOPIC_NOBODY, "");
    TA(m, a, "chat", 0, S, GW_TOPIC_UNKNOWN, ""); /* "chat.>" is under chat, not chat */
    TA(m, a, "news", 0, S, GW_TOPIC_KNOWN, "public");
    TA(m, a, "news", 0, P, GW_TOPIC_KNOWN, "events:publish"); /* unnamed: the default */
    TA(m, a, "news.x", 0, S, GW_TOPIC_UNKNOWN, "");
    TA(m, a, "ts.made", 0, S, GW_TOPIC_KNOWN, "authenticated"); /* stricter, never looser */
    TA(m, a, "ts.made", 0, P, GW_TOPIC_NOBODY, "");
    TA(m, a, "ts.chat", 0, P, GW_TOPIC_KNOWN, "events:publish chat:write");
    TA(m, a, "ts.chat", 0, S, GW_TOPIC_KNOWN, "public"); /* the rule names no subscribe */
    TA(m, a, "chat", 1, S, GW_TOPIC_KNOWN, "admin");     /* chat.admin is under it */
    TA(m, a, "chat.room", 1, S, GW_TOPIC_KNOWN, "public"); /* covered by chat.> */
    TA(m, a, "", 1, S, GW_TOPIC_KNOWN, "s:read admin");    /* everything */
    gw_auth_free(a);

    /* A rule that opens every free topic does not open a service's space:
     * an undeclared topic there needs credentials, and so does a prefix
     * subscription that takes in such topics, whatever rule covers it. */
    {
        static const char open[] = "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}},"
                                   " \"topics\": {\">\": {\"subscribe\": \"public\"},"
                                   "  \"ts.>\": {\"subscribe\": \"public\"}}}";
        CHECK_INT(gw_auth_parse(open, sizeof open - 1, NULL, &a, err, sizeof err), 0);
        TA(m, a, "free.topic", 0, S, GW_TOPIC_KNOWN, "public");
        TA(m, a, "free", 1, S, GW_TOPIC_KNOWN, "public");
        TA(m, a, "ts.made", 0, S, GW_TOPIC_KNOWN, "public");
        TA(m, a, "ts.made.x", 0, S, GW_TOPIC_KNOWN, "authenticated");
        TA(m, a, "ts.made", 1, S, GW_TOPIC_KNOWN, "authenticated"); /* ts.made.x is under it */
        TA(m, a, "ts.chat", 1, S, GW_TOPIC_KNOWN, "authenticated");
        TA(m, a, "bad", 1, S, GW_TOPIC_KNOWN, "authenticated"); /* a space, nothing declared */
        TA(m, a, "ts", 1, S, GW_TOPIC_KNOWN, "s:read");
        TA(m, a, "", 1, S, GW_TOPIC_KNOWN, "s:read");
        gw_auth_free(a);
    }

    /* Rules refused at start, with the key named. */
    {
        static const char *const bad[] = {
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": []}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a.*\": {}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a..b\": {}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a.>.b\": {}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\".>\": {}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a\": {\"subscribe\": \"\"}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a\": {\"subscribe\": 3}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a\": {\"subscribe\": true}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a\": {\"publish\": \"a  b\"}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a\": {\"pub\": \"x\"}}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"a\": \"public\"}}",
            "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {\"$SRV\": {}}}",
            NULL,
        };
        size_t i;
        for (i = 0; bad[i]; i++) {
            a = NULL;
            err[0] = '\0';
            CHECK_INT(gw_auth_parse(bad[i], strlen(bad[i]), NULL, &a, err, sizeof err), -1);
            CHECK(a == NULL);
            CHECK(strncmp(err, "topics", 6) == 0 || strncmp(err, "\"topics\"", 8) == 0);
        }
    }
    /* 33 distinct scopes under one prefix: too many to name, so nobody. */
    {
        char big[8192];
        size_t n = (size_t)snprintf(big, sizeof big, "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {");
        int i;
        for (i = 0; i < 33; i++)
            n += (size_t)snprintf(big + n, sizeof big - n, "%s\"p.t%d\": {\"subscribe\": \"s%d\"}",
                                  i ? ", " : "", i, i);
        snprintf(big + n, sizeof big - n, "}}");
        CHECK_INT(gw_auth_parse(big, strlen(big), NULL, &a, err, sizeof err), 0);
        TA(m, a, "p", 1, S, GW_TOPIC_NOBODY, "");
        TA(m, a, "p.t32", 0, S, GW_TOPIC_KNOWN, "s32");
        gw_auth_free(a);
    }
    /* More rules than GW_TOPIC_RULES_MAX: refused at start. */
    {
        size_t cap = 64 * 1024, n, i;
        char *big = malloc(cap);
        CHECK(big != NULL);
        n = (size_t)snprintf(big, cap, "{\"tokens\": {\"tttttttttttttttt\": {\"sub\": \"x\"}}, \"topics\": {");
        for (i = 0; i <= GW_TOPIC_RULES_MAX; i++)
            n += (size_t)snprintf(big + n, cap - n, "%s\"r%zu\": {}", i ? ", " : "", i);
        snprintf(big + n, cap - n, "}}");
        a = NULL;
        CHECK_INT(gw_auth_parse(big, strlen(big), NULL, &a, err, sizeof err), -1);
        CHECK_STR(err, "topics: more than 1000 rules");
        free(big);
    }
#undef TA
    gw_access_map_unref(m);
    json_decref(infos);
}

int
main(void)
{
    test_header();
    test_decide();
    test_principal_header();
    test_access_map();
    test_basic_checks_shared();
    test_topic_access();
    test_tokens();
    test_jwt_cache();
    return check_done("test_gw_auth");
}
