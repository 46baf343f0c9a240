/* test_gw_auth.c: the gateway's auth pieces without I/O: the Authorization
 * header, base64, the decision (401, 403, 503), the principal header, the
 * access map built from INFO replies, and identification by static token
 * (which needs no loop). */
#include "auth/auth.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

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
        " {\"subject\": \"$SRV.x\", \"metadata\": {\"access\": \"public\"}}]},"
        " {\"endpoints\": ["
        " {\"subject\": \"s.roll\", \"metadata\": {\"access\": \"w\"}},"
        " {\"subject\": \"s.pub\", \"metadata\": {\"access\": \"public\"}}]},"
        " {\"endpoints\": 3}, 7]",
        0, NULL);
    gw_access_map *m = gw_access_map_build(infos);

    CHECK(m != NULL);
    CHECK_STR(gw_access_map_get(m, "s.pub", 5), "public");
    CHECK_STR(gw_access_map_get(m, "s.old", 5), "authenticated");
    CHECK_STR(gw_access_map_get(m, "s.bad", 5), "authenticated");
    CHECK_STR(gw_access_map_get(m, "s.roll", 6), "w"); /* replicas disagree: the stricter */
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

int
main(void)
{
    test_header();
    test_decide();
    test_principal_header();
    test_access_map();
    test_tokens();
    return check_done("test_gw_auth");
}
