/* test_gw_auth_toml.c: GATEWAY_AUTH in TOML (gateway/auth/auth_toml.cpp).
 * The README's example in TOML is the JSON one, key for key and in the same
 * order; every TOML value has its JSON form or a refusal that names the
 * line; malformed and hostile TOML is an error, never a crash; and a TOML
 * file ends in the JSON validator with the same messages as JSON. */
#include "auth/auth.h"
#include "auth/auth_toml.h"
#include "check.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The README's example, both forms (README.md, "The credentials file"). */
static const char readme_json[] =
    "{\n"
    "  \"tokens\": {\"alice-secret-token-123\": {\"sub\": \"alice\", \"scopes\": "
    "[\"things:write\"]}},\n"
    "  \"basic\": {\"bob\": {\"hash\": \"$2b$12$...\", \"scopes\": []}},\n"
    "  \"jwt\": {\"jwks_file\": \"jwks.json\", \"issuer\": \"https://id.example\", \"audience\": "
    "\"natsrpc\",\n"
    "          \"scopes_claim\": \"scope\"},\n"
    "  \"authorizer\": {\"rpc\": \"auth_service.authorize\", \"ttl_s\": 60, \"timeout_s\": 2},\n"
    "  \"topics\": {\"chat.>\": {\"subscribe\": \"public\", \"publish\": \"chat:write\"}}\n"
    "}\n";

static const char readme_toml[] =
    "[tokens.alice-secret-token-123]\n"
    "sub = \"alice\"\n"
    "scopes = [\"things:write\"]\n"
    "\n"
    "[basic.bob]\n"
    "hash = '$2b$12$...'   # literal string: no escapes in a hash\n"
    "scopes = []\n"
    "\n"
    "[jwt]\n"
    "jwks_file = \"jwks.json\"\n"
    "issuer = \"https://id.example\"\n"
    "audience = \"natsrpc\"\n"
    "scopes_claim = \"scope\"\n"
    "\n"
    "[authorizer]\n"
    "rpc = \"auth_service.authorize\"\n"
    "ttl_s = 60\n"
    "timeout_s = 2\n"
    "\n"
    "[topics.\"chat.>\"]   # a key with '.' or '>' is quoted\n"
    "subscribe = \"public\"\n"
    "publish = \"chat:write\"\n";

/* TOML text -> compact JSON text (new), or NULL with err. */
static char *
toml_dump(const char *toml, size_t len, char *err, size_t errlen)
{
    json_t *j = gw_toml_to_json(toml, len, err, errlen);
    char *s;
    if (j == NULL)
        return NULL;
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static char *
json_dump_text(const char *json)
{
    json_error_t e;
    json_t *j = json_loads(json, 0, &e);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* toml converts to exactly the JSON value json (same keys, same order). */
#define CHECK_CONVERTS(toml, json)                                                             \
    do {                                                                                       \
        char e_[512] = "";                                                                     \
        char *got_ = toml_dump((toml), strlen(toml), e_, sizeof e_);                           \
        char *want_ = json_dump_text(json);                                                    \
        if (got_ == NULL)                                                                      \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, e_);                            \
        CHECK_STR(got_, want_);                                                                \
        free(got_);                                                                            \
        free(want_);                                                                           \
    } while (0)

/* n bytes of toml are refused with exactly the message msg. */
static void
refused(const char *toml, size_t n, const char *msg, int line)
{
    char err[512] = "";
    json_t *j = gw_toml_to_json(toml, n, err, sizeof err);
    if (j != NULL || strcmp(err, msg) != 0)
        fprintf(stderr, "test_gw_auth_toml.c:%d: refusal\n", line);
    CHECK(j == NULL);
    CHECK_STR(err, msg);
    json_decref(j);
}
#define CHECK_REFUSED(toml, msg) refused((toml), strlen(toml), (msg), __LINE__)

static void
test_readme_example(void)
{
    CHECK_CONVERTS(readme_toml, readme_json);
    /* the same file written with inline tables and dotted keys */
    CHECK_CONVERTS("tokens.alice-secret-token-123 = {sub = \"alice\", scopes = [\"things:write\"]}\n"
                   "basic = {bob = {hash = \"$2b$12$...\", scopes = []}}\n"
                   "jwt.jwks_file = \"jwks.json\"\n"
                   "jwt.issuer = \"https://id.example\"\n"
                   "jwt.audience = \"natsrpc\"\n"
                   "jwt.scopes_claim = \"scope\"\n"
                   "[authorizer]\n"
                   "rpc = \"auth_service.authorize\"\nttl_s = 60\ntimeout_s = 2\n"
                   "[topics]\n'chat.>' = {subscribe = 'public', publish = 'chat:write'}\n",
                   readme_json);
}

static void
test_values(void)
{
    CHECK_CONVERTS("", "{}");
    CHECK_CONVERTS("# only a comment\n\n", "{}");
    CHECK_CONVERTS("i = -9223372036854775808\nj = 0x7fffffffffffffff\nk = 1_000\n",
                   "{\"i\": -9223372036854775808, \"j\": 9223372036854775807, \"k\": 1000}");
    CHECK_CONVERTS("f = 0.5\ng = -2e3\n", "{\"f\": 0.5, \"g\": -2000.0}");
    CHECK_CONVERTS("t = true\nf = false\n", "{\"t\": true, \"f\": false}");
    CHECK_CONVERTS("s = 'C:\\path'\nm = \"\"\"\nx\ty\"\"\"\nu = \"\\u00e9\\U0001F600\"\n",
                   "{\"s\": \"C:\\\\path\", \"m\": \"x\\ty\", \"u\": \"\\u00e9\\ud83d\\ude00\"}");
    CHECK_CONVERTS("a = [1, [\"x\", {y = 2}], []]\n", "{\"a\": [1, [\"x\", {\"y\": 2}], []]}");
    CHECK_CONVERTS("[[u]]\nn = 1\n[[u]]\nn = 2\n", "{\"u\": [{\"n\": 1}, {\"n\": 2}]}");
    /* keys in the file's order, not sorted */
    CHECK_CONVERTS("z = 1\na = 2\n[m]\nb = 3\n", "{\"z\": 1, \"a\": 2, \"m\": {\"b\": 3}}");
    CHECK_CONVERTS("\"quoted key\" = 1\n'lit.key' = 2\n",
                   "{\"quoted key\": 1, \"lit.key\": 2}");
    /* dots inside strings are not key parts */
    {
        size_t n = 3 * GW_TOML_MAX_KEY_DOTS;
        char *t = malloc(n + 16), *j = malloc(n + 16);
        memcpy(t, "s = \"", 5);
        memset(t + 5, '.', n);
        memcpy(t + 5 + n, "\"\n", 3);
        memcpy(j, "{\"s\": \"", 7);
        memset(j + 7, '.', n);
        memcpy(j + 7 + n, "\"}", 3);
        CHECK_CONVERTS(t, j);
        free(t);
        free(j);
    }
}

static void
test_malformed(void)
{
    static const char nul[] = "a = \"x\0y\"\n";
    static const char nul_bare[] = "a = 1\n\0";
    char *big;
    size_t i;

    CHECK_REFUSED("a = \"abc\n",
                  "not TOML: line 1 column 9: Error while parsing string: unescaped control "
                  "characters other than TAB (U+0009) are explicitly prohibited");
    CHECK_REFUSED("a = 'abc",
                  "not TOML: line 1 column 9: Error while parsing literal string: encountered "
                  "end-of-file");
    CHECK_REFUSED("a = 1\nb = 2\na = 3\n",
                  "not TOML: line 3 column 5: Error while parsing key-value pair: cannot redefine "
                  "existing integer 'a'");
    CHECK_REFUSED("[t]\n[t]\n",
                  "not TOML: line 2 column 1: Error while parsing table header: cannot redefine "
                  "existing table 't'");
    CHECK_REFUSED("a = \"\\q\"\n",
                  "not TOML: line 1 column 7: Error while parsing string: unknown escape sequence "
                  "'\\q'");
    CHECK_REFUSED("a = 99999999999999999999\n",
                  "not TOML: line 1 column 25: Error while parsing decimal integer: '...' is not "
                  "representable in 64 bits");
    CHECK_REFUSED("a = \"\xff\xfe\"\n",
                  "not TOML: line 1 column 5: Encountered invalid utf-8 sequence");
    CHECK_REFUSED("\xc3( = 1\n", "not TOML: line 1 column 1: Encountered invalid utf-8 sequence");
    CHECK_REFUSED("# \xed\xa0\x80 (a surrogate)\na = 1\n",
                  "not TOML: line 1 column 2: Encountered invalid utf-8 sequence");
    /* non-ASCII where whitespace may stand: toml++ 3.3 reached undefined
     * behaviour here (see auth_toml.cpp) */
    CHECK_REFUSED("e\xd2\x92.g = 1\n", "not TOML: line 1 column 2: Error while parsing key-value "
                                        "pair: expected '=', saw '\xd2\x92'");
    CHECK_REFUSED("k = 1\xc3\xa9\n", "not TOML: line 1 column 6: Error while parsing decimal "
                                      "integer: expected digit, saw '\xc3\xa9'");
    CHECK_CONVERTS("s = \"\"\"\\\n   \xc2\xa7\"\"\"\n", "{\"s\": \"\\u00a7\"}"); /* valid */
    CHECK_REFUSED("\xcc\xaa", "not TOML: line 1 column 1: Error while parsing root table: "
                               "expected keys, tables, whitespace or comments, saw '\xcc\xaa'");
    refused(nul, sizeof nul - 1,
            "not TOML: line 1 column 7: Error while parsing string: unescaped control characters "
            "other than TAB (U+0009) are explicitly prohibited",
            __LINE__);
    refused(nul_bare, sizeof nul_bare - 1,
            "not TOML: line 2 column 1: Error while parsing root table: expected keys, tables, "
            "whitespace or comments, saw '\\u0000'",
            __LINE__);
    CHECK_REFUSED("a = 1 b = 2\n",
                  "not TOML: line 1 column 7: Error while parsing key-value pair: expected a "
                  "comment or whitespace, saw 'b'");
    CHECK_REFUSED("[tokens\n",
                  "not TOML: line 1 column 8: Error while parsing table header: expected ']', saw "
                  "'\\n'");

    /* 10,000 nested arrays, inline tables, dotted key parts, header parts */
    big = malloc(5 * 10000 + 64);
    strcpy(big, "a = ");
    for (i = 0; i < 10000; i++)
        strcat(big + 4 + i, "[");
    CHECK_REFUSED(big, "not TOML: line 1 column 21: Error while parsing value: exceeded maximum "
                       "nested value depth of 16 (TOML_MAX_NESTED_VALUES)");
    strcpy(big, "a = ");
    for (i = 0; i < 10000; i++)
        memcpy(big + 4 + 4 * i, "{b= ", 5);
    CHECK_REFUSED(big, "not TOML: line 1 column 69: Error while parsing value: exceeded maximum "
                       "nested value depth of 16 (TOML_MAX_NESTED_VALUES)");
    big[0] = '\0';
    for (i = 0; i < 10000; i++)
        memcpy(big + 2 * i, "a.", 3);
    strcpy(big + 2 * 10000 - 1, " = 1\n");
    CHECK_REFUSED(big, "line 1: more than 256 dots outside strings (a key of so many parts nests "
                       "too deep)");
    big[0] = '[';
    for (i = 0; i < 10000; i++)
        memcpy(big + 1 + 2 * i, "a.", 3);
    strcpy(big + 2 * 10000, "]\nx = 1\n");
    CHECK_REFUSED(big, "line 1: more than 256 dots outside strings (a key of so many parts nests "
                       "too deep)");
    /* the bound counts the line, not the file: a dotted key on its own line
     * after a string with many dots */
    strcpy(big, "s = '");
    memset(big + 5, '.', 300);
    strcpy(big + 305, "'\nk.");
    for (i = 0; i < 300; i++)
        memcpy(big + 309 + 2 * i, "a.", 3);
    strcpy(big + 309 + 600, "b = 1\n");
    CHECK_REFUSED(big, "line 2: more than 256 dots outside strings (a key of so many parts nests "
                       "too deep)");
    /* the deepest tree the bounds let through (257 parts of a header, then
     * arrays of inline tables with 257-part keys, nested to the limit):
     * parsed, refused by the converter's depth, and freed without running
     * out of stack (toml++ frees recursively) */
    {
        char key[2 * 257 + 1];
        size_t at = 0;
        for (i = 0; i < 257; i++)
            memcpy(key + 2 * i, "a.", 3);
        key[2 * 257 - 1] = '\0';
        at += (size_t)sprintf(big + at, "[%s]\nx = [", key);
        for (i = 0; i < GW_TOML_MAX_NESTED_VALUES / 2 - 1; i++)
            at += (size_t)sprintf(big + at, "{%s = [\n", key);
        at += (size_t)sprintf(big + at, "1");
        for (i = 0; i < GW_TOML_MAX_NESTED_VALUES / 2 - 1; i++)
            at += (size_t)sprintf(big + at, "]}");
        sprintf(big + at, "]\n");
        CHECK_REFUSED(big, "line 1 column 1: a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a."
                           "a.a.a.a.a.a: nested deeper than 32 levels");
    }
    /* deep but within every bound: refused by the converter's depth */
    big[0] = '[';
    for (i = 0; i < 100; i++)
        memcpy(big + 1 + 2 * i, "a.", 3);
    strcpy(big + 200, "]\nx = 1\n");
    CHECK_REFUSED(big, "line 1 column 1: a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a."
                       "a.a.a.a: nested deeper than 32 levels");
    free(big);
}

static void
test_no_json_form(void)
{
    CHECK_REFUSED("[jwt]\nissuer = 1979-05-27\n",
                  "line 2 column 10: jwt.issuer: dates and times have no place in this file "
                  "(quote it if it is text)");
    CHECK_REFUSED("t = 07:32:00\n", "line 1 column 5: t: dates and times have no place in this "
                                    "file (quote it if it is text)");
    CHECK_REFUSED("a = [1, 1979-05-27T07:32:00Z]\n",
                  "line 1 column 9: a[1]: dates and times have no place in this file (quote it "
                  "if it is text)");
    CHECK_REFUSED("[authorizer]\ntimeout_s = inf\n",
                  "line 2 column 13: authorizer.timeout_s: inf and nan are not numbers here");
    CHECK_REFUSED("x = -nan\n", "line 1 column 5: x: inf and nan are not numbers here");
    CHECK_REFUSED("s = \"a\\u0000b\"\n", "line 1 column 5: s: a string may not hold U+0000");
    CHECK_REFUSED("\"k\\u0000\" = 1\n", "line 1 column 1: \"k\\x00\": a key may not hold U+0000");
    CHECK_REFUSED("\"a b\".\"c\\\"\\u0001\" = 1979-05-27\n",
                  "line 1 column 21: \"a b\".\"c\\x22\\x01\": dates and times have no place in "
                  "this file (quote it if it is text)");
}

/* A token is a secret: no message repeats it. */
static void
test_tokens_stay_secret(void)
{
    char err[512];
    json_t *j;

    CHECK_REFUSED("[tokens.first-token-0123456789]\nsub = \"a\"\n"
                  "[tokens.second-token-0123456789]\nsub = 1979-05-27\n",
                  "line 4 column 7: tokens[#2].sub: dates and times have no place in this file "
                  "(quote it if it is text)");
    CHECK_REFUSED("[tokens]\nsecret-token-0123456789 = 1979-05-27\n",
                  "line 2 column 27: tokens[#1]: dates and times have no place in this file "
                  "(quote it if it is text)");
    CHECK_REFUSED("[tokens.secret-token-0123456789]\n[tokens.secret-token-0123456789]\n",
                  "not TOML: line 2 column 1: Error while parsing table header: cannot "
                  "redefine existing table '...'");
    {
        static const char dup[] = "tokens.secret-token-0123456789.sub = 'a'\n"
                                  "tokens.secret-token-0123456789.sub = 'b'\n";
        j = gw_toml_to_json(dup, strlen(dup), err, sizeof err);
    }
    CHECK(j == NULL);
    CHECK(strstr(err, "secret-token") == NULL);
    CHECK_CONTAINS(err, "not TOML: line 2 column ");
}

/* The same file as JSON and as TOML gets the same verdict and message. */
static void
same_verdict(const char *json, const char *toml, const char *msg, int line)
{
    char ej[512] = "", et[512] = "", *text;
    size_t len = 0;
    gw_auth *a = NULL, *b = NULL;
    int rj = gw_auth_parse(json, strlen(json), NULL, &a, ej, sizeof ej), rt = -1;

    text = gw_toml_to_json_text(toml, strlen(toml), &len, et, sizeof et);
    if (text != NULL)
        rt = gw_auth_parse(text, len, NULL, &b, et, sizeof et);
    if (rj != rt || strcmp(ej, et) != 0 || strcmp(ej, msg) != 0)
        fprintf(stderr, "test_gw_auth_toml.c:%d: verdicts differ\n", line);
    CHECK_INT(rt, rj);
    CHECK_STR(et, msg);
    CHECK_STR(ej, msg);
    if (a != NULL && b != NULL) {
        char da[256], db[256];
        gw_auth_describe(a, da, sizeof da);
        gw_auth_describe(b, db, sizeof db);
        CHECK_STR(db, da);
    }
    gw_auth_free(a);
    gw_auth_free(b);
    free(text);
}
#define CHECK_SAME(json, toml, msg) same_verdict((json), (toml), (msg), __LINE__)

static void
test_same_validation(void)
{
    struct crypt_data cd;
    char salt[64], json[512], toml[512];
    const char *hash;

    memset(&cd, 0, sizeof cd);
    CHECK(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof salt) != NULL);
    hash = crypt_r("pw", salt, &cd);
    CHECK(hash != NULL && strlen(hash) == 60);
    snprintf(json, sizeof json,
             "{\"tokens\": {\"alice-token-0123456789\": {\"sub\": \"alice\", \"scopes\": "
             "[\"things:write\"]}, \"reader-token-0123456789\": {\"sub\": \"reader\"}},"
             " \"basic\": {\"bob\": {\"hash\": \"%s\"}},"
             " \"authorizer\": {\"rpc\": \"auth_service.authorize\", \"ttl_s\": 5}}",
             hash);
    snprintf(toml, sizeof toml,
             "[tokens.alice-token-0123456789]\nsub = 'alice'\nscopes = ['things:write']\n"
             "[tokens.reader-token-0123456789]\nsub = 'reader'\n"
             "[basic.bob]\nhash = '%s'\n"
             "[authorizer]\nrpc = 'auth_service.authorize'\nttl_s = 5\n",
             hash);
    CHECK_SAME(json, toml, "");

    CHECK_SAME("{\"tokenz\": {}}", "[tokenz]\n", "the file: unknown key 'tokenz'");
    CHECK_SAME("{}", "", "no credentials: give tokens, basic, jwt or authorizer");
    CHECK_SAME("{\"tokens\": {\"long-enough-token-0\": {\"sub\": \"a\"}, \"short\": {\"sub\": "
               "\"b\"}}}",
               "[tokens]\nlong-enough-token-0 = {sub = 'a'}\nshort = {sub = 'b'}\n",
               "tokens[#2]: a token must have 16 to 4096 characters");
    CHECK_SAME("{\"tokens\": {\"long-enough-token-0\": {\"sub\": \"a\", \"scope\": []}}}",
               "tokens.long-enough-token-0 = {sub = 'a', scope = []}\n",
               "tokens[#1]: unknown key 'scope'");
    CHECK_SAME("{\"basic\": {\"bob\": {\"hash\": \"plain\"}}}", "basic.bob.hash = 'plain'\n",
               "basic.bob: \"hash\" must be a bcrypt ($2b$...) or yescrypt ($y$...) hash, as "
               "mkpasswd or htpasswd -B make");
    CHECK_SAME("{\"authorizer\": {\"rpc\": \"a.b\", \"ttl_s\": 1.5}}",
               "[authorizer]\nrpc = 'a.b'\nttl_s = 1.5\n",
               "authorizer: \"ttl_s\" must be an integer from 0 to 86400");
    CHECK_SAME("{\"authorizer\": {\"rpc\": \"a.b\", \"timeout_s\": 0.25}}",
               "[authorizer]\nrpc = 'a.b'\ntimeout_s = 0.25\n", "");
    CHECK_SAME("{\"tokens\": {\"long-enough-token-0\": {\"sub\": \"a\"}}, \"topics\": {\"chat.>\": "
               "{\"subscribe\": \"\"}}}",
               "tokens.long-enough-token-0.sub = 'a'\ntopics.'chat.>'.subscribe = ''\n",
               "topics.chat.>: \"subscribe\" must be \"public\", \"authenticated\", space-separated "
               "scopes, or null (false) for nobody");
    /* TOML has no null: false lets nobody publish */
    CHECK_SAME("{\"tokens\": {\"long-enough-token-0\": {\"sub\": \"a\"}}, \"topics\": {\"chat.staff\": "
               "{\"subscribe\": \"admin\", \"publish\": false}}}",
               "tokens.long-enough-token-0.sub = 'a'\n[topics.'chat.staff']\nsubscribe = 'admin'\n"
               "publish = false\n",
               "");
    CHECK_SAME("{\"tokens\": []}", "tokens = []\n",
               "\"tokens\" must be an object: token -> {sub, scopes}");
    CHECK_SAME("{\"tokens\": {\"long-enough-token-0\": {\"sub\": \"a\", \"scopes\": [\"a b\"]}}}",
               "tokens.long-enough-token-0 = {sub = 'a', scopes = ['a b']}\n",
               "tokens[#1]: \"scopes\" must be scope tokens (printable ASCII but space, '\"' and "
               "'\\\\'), 1024 bytes in all at most");
}

static int
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* gw_auth_load: the name's ending picks the format. */
static void
test_load(void)
{
    char dir[] = "/tmp/test_gw_auth_toml.XXXXXX", path[256], err[512];
    static const char toml[] = "# static tokens\n[tokens.file-token-0123456789]\nsub = 'f'\n";
    static const char *const names[] = {"auth.toml", "AUTH.TOML", "auth.Toml", NULL};
    const char *const *n;
    gw_auth *a = NULL;

    CHECK(mkdtemp(dir) != NULL);
    for (n = names; *n; n++) {
        snprintf(path, sizeof path, "%s/%s", dir, *n);
        CHECK_INT(write_file(path, toml), 0);
        err[0] = '\0';
        CHECK_INT(gw_auth_load(path, &a, err, sizeof err), 0);
        CHECK_STR(err, "");
        if (a != NULL) {
            char d[256];
            gw_auth_describe(a, d, sizeof d);
            CHECK_STR(d, "1 tokens, 0 Basic users, JWTs off, authorizer off");
        }
        gw_auth_free(a);
        a = NULL;
        unlink(path);
    }
    /* anything else is JSON, also TOML text in it */
    snprintf(path, sizeof path, "%s/auth.toml.json", dir);
    CHECK_INT(write_file(path, toml), 0);
    CHECK_INT(gw_auth_load(path, &a, err, sizeof err), -1);
    CHECK_STR(err, "not JSON: line 1 column 1: '[' or '{' expected near '#'");
    unlink(path);
    /* and JSON in a .toml file is not TOML */
    snprintf(path, sizeof path, "%s/auth.toml", dir);
    CHECK_INT(write_file(path, "{\"tokens\": {}}\n"), 0);
    CHECK_INT(gw_auth_load(path, &a, err, sizeof err), -1);
    CHECK_STR(err, "not TOML: line 1 column 1: Error while parsing root table: expected keys, "
                   "tables, whitespace or comments, saw '{'");
    CHECK_INT(write_file(path, "[tokens.file-token-0123456789]\nsub = 'f\n"), 0);
    CHECK_INT(gw_auth_load(path, &a, err, sizeof err), -1);
    CHECK_STR(err, "not TOML: line 2 column 9: Error while parsing literal string: "
                   "control characters other than TAB (U+0009) are explicitly "
                   "prohibited");
    unlink(path);
    CHECK_INT(gw_auth_load(path, &a, err, sizeof err), -1); /* gone */
    CHECK(a == NULL);
    rmdir(dir);

    CHECK_INT(gw_auth_path_is_toml("a.toml"), 1);
    CHECK_INT(gw_auth_path_is_toml("/etc/natsrpc/auth.TOML"), 1);
    CHECK_INT(gw_auth_path_is_toml("a.toml.json"), 0);
    CHECK_INT(gw_auth_path_is_toml("toml"), 0);
    CHECK_INT(gw_auth_path_is_toml("a.tom"), 0);
    CHECK_INT(gw_auth_path_is_toml("a.json"), 0);
    CHECK_INT(gw_auth_path_is_toml(""), 0);
    CHECK_INT(gw_auth_path_is_toml(NULL), 0);
}

/* Every prefix of the example is either a document or an error with a
 * line; never a crash. */
static void
test_prefixes(void)
{
    size_t n = strlen(readme_toml), i;
    for (i = 0; i <= n; i++) {
        char err[512] = "";
        json_t *j = gw_toml_to_json(readme_toml, i, err, sizeof err);
        CHECK(j != NULL || strncmp(err, "not TOML: line ", 15) == 0);
        json_decref(j);
    }
}

int
main(void)
{
    test_readme_example();
    test_values();
    test_malformed();
    test_no_json_form();
    test_tokens_stay_secret();
    test_same_validation();
    test_load();
    test_prefixes();
    return check_done("gw_auth_toml");
}
