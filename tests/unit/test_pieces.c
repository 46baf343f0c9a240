/* test_pieces.c: the small shared pieces of natsrpc, one of each: the hash
 * table, header numbers, the backoff, the id source, event subjects and the
 * bound on subjects, the timeout header's deadline, and freeing owned NATS
 * messages. */
#include "natsrpc.h"
#include "check.h"
#include "runtime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nrpc_tnode node; /* first: the entry is the node */
    int value;
} item;

/* Access strings: keywords, scope lists, and what a caller's scopes allow. */
static void
test_access(void)
{
    char big[NRPC_MAX_ACCESS + 2];

    CHECK(nrpc_access_valid(NULL));
    CHECK(nrpc_access_valid("public"));
    CHECK(nrpc_access_valid("authenticated"));
    CHECK(nrpc_access_valid("things:write"));
    CHECK(nrpc_access_valid("a b c:d https://x/y"));
    CHECK(!nrpc_access_valid(""));
    CHECK(!nrpc_access_valid(" a"));
    CHECK(!nrpc_access_valid("a "));
    CHECK(!nrpc_access_valid("a  b"));
    CHECK(!nrpc_access_valid("a\tb"));
    CHECK(!nrpc_access_valid("a\"b"));
    CHECK(!nrpc_access_valid("a\\b"));
    CHECK(!nrpc_access_valid("caf\xc3\xa9"));
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(!nrpc_access_valid(big)); /* one byte too long */
    big[NRPC_MAX_ACCESS] = '\0';
    CHECK(nrpc_access_valid(big));
    CHECK(!nrpc_access_valid("a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7"));
    CHECK(nrpc_access_valid("a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6"));

    CHECK(nrpc_access_allows(NULL, NULL, 0));
    CHECK(nrpc_access_allows("public", NULL, 0));
    CHECK(nrpc_access_allows("authenticated", "", 0));
    CHECK(nrpc_access_allows("things:write", "things:write", 12));
    CHECK(nrpc_access_allows("things:write", "a things:write b", 16));
    CHECK(!nrpc_access_allows("things:write", "things:writer", 13));
    CHECK(!nrpc_access_allows("things:write", "things:write", 11)); /* n bytes only */
    CHECK(!nrpc_access_allows("things:write", "things:wri te", 13));
    CHECK(!nrpc_access_allows("things:write", NULL, 0));
    CHECK(!nrpc_access_allows("a b", "a", 1)); /* every scope is needed */
    CHECK(nrpc_access_allows("a b", "b a", 3));
}

static void
test_table(void)
{
    nrpc_table t = {0};
    enum { N = 5000 };
    item *items = calloc(N, sizeof *items);
    int i, seen = 0;
    nrpc_tnode *n;

    CHECK(nrpc_table_get(&t, 1) == NULL); /* empty, no buckets yet */
    CHECK(nrpc_table_take_any(&t) == NULL);
    for (i = 0; i < N; i++) {
        items[i].value = i;
        CHECK_INT(nrpc_table_put(&t, &items[i].node, (uint64_t)i * 7919u), 0);
    }
    CHECK_INT(t.count, N);
    CHECK(t.nbuckets >= N); /* grew, load at most 1 */
    for (i = 0; i < N; i += 97)
        CHECK_INT(((item *)nrpc_table_get(&t, (uint64_t)i * 7919u))->value, i);
    CHECK(nrpc_table_get(&t, 3) == NULL);
    /* take removes exactly one */
    n = nrpc_table_take(&t, 7919u * 10);
    CHECK(n == &items[10].node);
    CHECK(nrpc_table_take(&t, 7919u * 10) == NULL);
    CHECK_INT(nrpc_table_remove(&t, &items[10].node), 0);
    CHECK_INT(nrpc_table_remove(&t, &items[11].node), 1);
    CHECK_INT(t.count, N - 2);
    /* duplicate keys: walked with next */
    {
        item a = {.value = 1}, b = {.value = 2};
        uint64_t k = nrpc_hash_str("events.a.b");
        CHECK_INT(nrpc_table_put(&t, &a.node, k), 0);
        CHECK_INT(nrpc_table_put(&t, &b.node, k), 0);
        n = nrpc_table_get(&t, k);
        CHECK(n != NULL);
        CHECK(nrpc_table_next(&t, n, k) != NULL);
        CHECK(nrpc_table_next(&t, nrpc_table_next(&t, n, k), k) == NULL);
        nrpc_table_remove(&t, &a.node);
        nrpc_table_remove(&t, &b.node);
    }
    while ((n = nrpc_table_take_any(&t)) != NULL)
        seen++;
    CHECK_INT(seen, N - 2);
    CHECK_INT(t.count, 0);
    nrpc_table_free(&t);
    free(items);
    CHECK(nrpc_hash_str("a") != nrpc_hash_str("b"));
    CHECK(nrpc_hash_bytes("events.a.b", 10) == nrpc_hash_str("events.a.b"));
    CHECK(nrpc_hash_bytes("events.a.b", 8) == nrpc_hash_str("events.a"));
}

/* Emptying a table entry by entry costs time linear in its size (the
 * gateway frees a catalog's access map of every declared rpc on its loop's
 * thread), also with entries put back below where the last one was taken. */
static void
test_table_take_any_is_linear(void)
{
    nrpc_table t = {0};
    enum { N = 1 << 17 };
    item *items = calloc(N, sizeof *items), back = {.value = -1};
    int64_t start, put_ms;
    int i, seen = 0;
    nrpc_tnode *n;

    /* Against the time the puts take (linear) rather than the clock, so
     * that a slow or busy machine (sanitizers) does not fail it: a scan
     * from the first bucket at every take made it 6.7 s against ~10 ms. */
    start = nrpc_now_ms();
    for (i = 0; i < N; i++)
        CHECK_INT(nrpc_table_put(&t, &items[i].node, (uint64_t)i), 0);
    put_ms = nrpc_now_ms() - start;
    start = nrpc_now_ms();
    for (i = 0; i < N / 2; i++)
        CHECK(nrpc_table_take_any(&t) != NULL);
    /* One put anywhere (perhaps a bucket already emptied): still taken. */
    CHECK_INT(nrpc_table_put(&t, &back.node, 0), 0);
    while ((n = nrpc_table_take_any(&t)) != NULL)
        seen++;
    CHECK_INT(seen, N - N / 2 + 1);
    CHECK_INT(t.count, 0);
    if (nrpc_now_ms() - start > 20 * put_ms + 100)
        CHECK(!"emptying 131072 entries took over 20 times as long as putting them");
    nrpc_table_free(&t);
    free(items);
}

static void
test_numbers(void)
{
    int64_t v = 42;

    CHECK_INT(nrpc_parse_int64("9223372036854775807", &v), 0);
    CHECK(v == INT64_MAX);
    CHECK_INT(nrpc_parse_int64("-9223372036854775808", &v), 0);
    CHECK(v == INT64_MIN);
    v = 42;
    CHECK_INT(nrpc_parse_int64("9223372036854775808", &v), -1); /* overflow */
    CHECK_INT(nrpc_parse_int64("99999999999999999999999", &v), -1);
    CHECK_INT(nrpc_parse_int64("12abc", &v), -1);
    CHECK_INT(nrpc_parse_int64("", &v), -1);
    CHECK_INT(nrpc_parse_int64(" 5", &v), -1);
    CHECK_INT(nrpc_parse_int64(NULL, &v), -1);
    CHECK_INT(v, 42); /* untouched on failure */

    /* the timeout header: no overflow, never a deadline in the past for a
     * huge budget */
    CHECK(nrpc__deadline_from_header("9223372036854775807", 1000) == INT64_MAX);
    CHECK(nrpc__deadline_from_header("9223372036854774000", 5000) == INT64_MAX);
    CHECK(nrpc__deadline_from_header("junk", 1000) == INT64_MAX);
    CHECK(nrpc__deadline_from_header("250", 1000) == 1250);
    CHECK(nrpc__deadline_from_header("-5", 1000) == 1000);
    CHECK(nrpc__deadline_from_header("-9223372036854775808", 1000) == 1000);
}

static void
test_backoff(void)
{
    int a;
    for (a = 1; a < 40; a++) {
        int64_t d = nrpc_backoff_ms(a, 100, 2000);
        int64_t base = a >= 6 ? 2000 : 100LL << (a - 1);
        CHECK(d >= base && d <= base + base / 10);
    }
    CHECK(nrpc_backoff_ms(1000000, 100, 2000) <= 2200); /* no overflow for huge attempts */
    CHECK(nrpc_backoff_ms(0, 0, 0) >= 1);
}

static void
test_ids(void)
{
    char a[33], b[33];
    nrpc_random_hex(a, 32);
    nrpc_random_hex(b, 32);
    a[32] = b[32] = '\0';
    CHECK(strspn(a, "0123456789abcdef") == 32);
    CHECK(strcmp(a, b) != 0);
    CHECK(nrpc_random64() != nrpc_random64());
    /* event ids: what emit puts in Nats-Msg-Id when the caller gives none */
    nrpc__event_new_id(a);
    CHECK(strlen(a) == NRPC_EVENT_ID_LEN && strspn(a, "0123456789abcdef") == NRPC_EVENT_ID_LEN);
    CHECK(nrpc_request_id_valid(a));
}

static void
test_subjects(void)
{
    char out[NRPC_MAX_SUBJECT + 1], big[NRPC_MAX_SUBJECT + 8];

    CHECK_INT(nrpc_topic_subject("websocket_test.websocket_test", out, sizeof out), 0);
    CHECK_STR(out, "events.websocket_test.websocket_test");
    CHECK_INT(nrpc_topic_subject("a", out, sizeof out), 0);
    CHECK_STR(out, "events.a");
    CHECK_INT(nrpc_topic_subject("a.*", out, sizeof out), -1);
    CHECK_INT(nrpc_topic_subject("a.>", out, sizeof out), -1);
    CHECK_INT(nrpc_topic_subject("$SRV.PING", out, sizeof out), -1);
    CHECK_INT(nrpc_topic_subject("a..b", out, sizeof out), -1);
    CHECK_INT(nrpc_topic_subject(".a", out, sizeof out), -1);
    CHECK_INT(nrpc_topic_subject("a.", out, sizeof out), -1);
    CHECK_INT(nrpc_topic_subject("", out, sizeof out), -1);
    CHECK_INT(nrpc_topic_subject("a b", out, sizeof out), -1);
    CHECK_INT(nrpc_topic_subject("a", out, 8), -1); /* "events.a" needs 9 bytes */
    /* the bound: topic + "events." at most NRPC_MAX_SUBJECT */
    memset(big, 'a', sizeof big);
    big[NRPC_MAX_SUBJECT - 7] = '\0';
    CHECK_INT(nrpc_topic_subject(big, out, sizeof out), 0);
    big[NRPC_MAX_SUBJECT - 7] = 'a';
    big[NRPC_MAX_SUBJECT - 6] = '\0';
    CHECK_INT(nrpc_topic_subject(big, out, sizeof out), -1);

    /* topic patterns: wildcards as whole tokens, '>' last */
    CHECK_INT(nrpc__topic_pattern_subject("thing_service.>", out, sizeof out), 0);
    CHECK_STR(out, "events.thing_service.>");
    CHECK_INT(nrpc__topic_pattern_subject("*.thing_created", out, sizeof out), 0);
    CHECK_STR(out, "events.*.thing_created");
    CHECK_INT(nrpc__topic_pattern_subject(">", out, sizeof out), 0);
    CHECK_INT(nrpc__topic_pattern_subject("a.*.*", out, sizeof out), 0);
    CHECK_INT(nrpc__topic_pattern_subject("a.b", out, sizeof out), 0);
    CHECK_STR(out, "events.a.b");
    CHECK_INT(nrpc__topic_pattern_subject("a*.b", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("a.*b", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("a.**", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("a.>>", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("a.>.b", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject(">.b", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("$JS.>", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("a..>", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("a.", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject("a >", out, sizeof out), -1);
    CHECK_INT(nrpc__topic_pattern_subject(NULL, out, sizeof out), -1);
    big[NRPC_MAX_SUBJECT - 6] = '\0';
    CHECK_INT(nrpc__topic_pattern_subject(big, out, sizeof out), -1);
    big[NRPC_MAX_SUBJECT - 7] = '\0';
    CHECK_INT(nrpc__topic_pattern_subject(big, out, sizeof out), 0);

    /* rpc subjects: at most NRPC_MAX_SUBJECT bytes */
    memset(big, 'a', sizeof big);
    big[1] = '.';
    CHECK_INT(nrpc_subject_is_rpc(big, NRPC_MAX_SUBJECT), 1);
    CHECK_INT(nrpc_subject_is_rpc(big, NRPC_MAX_SUBJECT + 1), 0);
}

static void
test_routes(void)
{
    nrpc_route r;
    char err[256], loc[256];
    json_t *params = json_object(), *thing;

    CHECK_INT(nrpc_route_parse("GET /things", &r, err, sizeof err), 0);
    CHECK_STR(r.method, "GET");
    CHECK_STR(r.path, "/things");
    CHECK_INT(r.status, 200);
    CHECK_STR(r.location, "");
    CHECK_INT(nrpc_route_parse("POST /things 201 /things/{uuid}", &r, err, sizeof err), 0);
    CHECK_INT(r.status, 201);
    CHECK_STR(r.location, "/things/{uuid}");
    CHECK_INT(nrpc_route_parse("DELETE /things/{uuid} 204", &r, err, sizeof err), 0);
    CHECK_INT(r.status, 204);
    /* refused rules, each with a reason */
    CHECK_INT(nrpc_route_parse("FETCH /x", &r, err, sizeof err), -1);
    CHECK_CONTAINS(err, "method must be");
    CHECK_INT(nrpc_route_parse("GET things", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET /a//b", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET /a/", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET /a/{}", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET /a/{b", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET /a/b{c}", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET /a/*", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET /a 500", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("DELETE /a 204 /a", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET /a 200 /b extra", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse("GET", &r, err, sizeof err), -1);
    CHECK_INT(nrpc_route_parse(NULL, &r, err, sizeof err), -1);

    /* matching */
    CHECK_INT(nrpc_route_parse("GET /things/{uuid}", &r, err, sizeof err), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/ab%20c", 14, params), 1);
    CHECK_STR(json_string_value(json_object_get(params, "uuid")), "ab c");
    CHECK_INT(nrpc_route_match(&r, "PUT", "/things/x", 9, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things", 7, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/", 8, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/x/y", 11, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/%2F", 11, params), 0); /* no '/' inside */
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/%00", 11, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/%4", 10, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/thingsx/1", 10, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/%ff", 11, params), 0); /* not UTF-8 */
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/..", 10, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/%2e%2E", 14, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/.", 9, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/things/...", 11, params), 1);
    CHECK_STR(json_string_value(json_object_get(params, "uuid")), "...");
    /* a literal segment percent-encoded is the same literal */
    CHECK_INT(nrpc_route_match(&r, "GET", "/th%69ngs/x", 11, params), 1);
    CHECK_INT(nrpc_route_match(&r, "GET", "/th%69ng/x", 10, params), 0);
    CHECK_INT(nrpc_route_match(&r, "GET", "/th%2Fngs/x", 11, params), 0);

    /* Location from the result */
    CHECK_INT(nrpc_route_parse("POST /things 201 /things/{uuid}", &r, err, sizeof err), 0);
    thing = json_pack("{s:s, s:s}", "uuid", "5f0c/x y", "name", "n");
    CHECK_INT(nrpc_route_location(&r, thing, loc, sizeof loc), 0);
    CHECK_STR(loc, "/things/5f0c%2Fx%20y");
    CHECK_INT(nrpc_route_location(&r, thing, loc, 12), -1); /* does not fit */
    json_object_del(thing, "uuid");
    CHECK_INT(nrpc_route_location(&r, thing, loc, sizeof loc), -1);
    json_decref(thing);
    json_decref(params);
}

/* Owned messages, with and without headers, are freed (the sanitizer build
 * reports a leak or a double free), and with Debian's nats.c without its
 * collector thread: if a new nats.c stops exporting natsMsg_free this
 * fails, so the cost comes back knowingly. */
static void
test_msg_destroy(void)
{
    natsMsg *m = NULL;
    int i;

    CHECK(nrpc__msg_destroy_direct());
    nrpc__msg_destroy(NULL);
    for (i = 0; i < 1000; i++) {
        CHECK_INT(natsMsg_Create(&m, "greeting_service.hello", "_INBOX.x.1", "[[],{}]", 7),
                  NATS_OK);
        if (i % 2)
            CHECK_INT(natsMsgHeader_Set(m, "Nrpc-Timeout-Ms", "60000"), NATS_OK);
        nrpc__msg_destroy(m);
    }
    nats_Close();
}

static void
test_idempotency_keys(void)
{
    char out[NRPC_IDEMPOTENCY_KEY_MAX + 1], long_key[NRPC_IDEMPOTENCY_KEY_MAX + 3];
    const char *uuid = "8e03978e-40d5-43e8-bc93-6894a57f9324";

    CHECK_INT(nrpc_idempotency_key_parse(uuid, strlen(uuid), out), 0);
    CHECK(strcmp(out, uuid) == 0);
    /* Quoted (the IETF draft's form) is the same key. */
    CHECK_INT(nrpc_idempotency_key_parse("\"ab-1\"", 6, out), 0);
    CHECK(strcmp(out, "ab-1") == 0);
    CHECK_INT(nrpc_idempotency_key_parse("a+/=~.:_b", 9, out), 0);
    CHECK(nrpc_idempotency_key_valid(out));
    /* Empty, spaces, quotes inside, control bytes, non-ASCII, a NUL: no. */
    CHECK_INT(nrpc_idempotency_key_parse("", 0, out), -1);
    CHECK_INT(nrpc_idempotency_key_parse("\"\"", 2, out), -1);
    CHECK_INT(nrpc_idempotency_key_parse("a b", 3, out), -1);
    CHECK_INT(nrpc_idempotency_key_parse("a\"b", 3, out), -1);
    CHECK_INT(nrpc_idempotency_key_parse("\"ab", 3, out), -1);
    CHECK_INT(nrpc_idempotency_key_parse("a\tb", 3, out), -1);
    CHECK_INT(nrpc_idempotency_key_parse("caf\xc3\xa9", 5, out), -1);
    CHECK_INT(nrpc_idempotency_key_parse("ab\0cd", 5, out), -1);
    CHECK_INT(nrpc_idempotency_key_parse(NULL, 0, out), -1);
    /* The limit, bare and quoted. */
    memset(long_key, 'k', sizeof long_key);
    CHECK_INT(nrpc_idempotency_key_parse(long_key, NRPC_IDEMPOTENCY_KEY_MAX, out), 0);
    CHECK_INT((long long)strlen(out), NRPC_IDEMPOTENCY_KEY_MAX);
    CHECK_INT(nrpc_idempotency_key_parse(long_key, NRPC_IDEMPOTENCY_KEY_MAX + 1, out), -1);
    long_key[0] = long_key[NRPC_IDEMPOTENCY_KEY_MAX + 1] = '"';
    CHECK_INT(nrpc_idempotency_key_parse(long_key, NRPC_IDEMPOTENCY_KEY_MAX + 2, out), 0);
    CHECK_INT(nrpc_idempotency_key_parse(long_key, NRPC_IDEMPOTENCY_KEY_MAX + 3, out), -1);
    CHECK(!nrpc_idempotency_key_valid(NULL));
    CHECK(!nrpc_idempotency_key_valid(""));
    CHECK(!nrpc_idempotency_key_valid("\"quoted\""));
}

static void
test_heartbeat_pieces(void)
{
    nrpc_table known = {0};
    char subject[32];
    int i;

    CHECK_INT(nrpc__hb_limit(1000), 2500); /* two missed, and half of one more */
    CHECK_INT(nrpc__hb_interval(60000), NRPC_HEARTBEAT_MS);
    CHECK_INT(nrpc__hb_interval(2501), NRPC_HEARTBEAT_MS);
    CHECK_INT(nrpc__hb_interval(2500), 0); /* gives up before a loss could show */
    CHECK_INT(nrpc__hb_interval(1), 0);
    /* Unknown subjects are not watched from the start, known ones are. */
    CHECK(nrpc__hb_watch(&known, "a.b", 1000, 10) == INT64_MAX);
    nrpc__hb_learn(&known, "a.b");
    nrpc__hb_learn(&known, "a.b");
    CHECK_INT(known.count, 1);
    CHECK(nrpc__hb_known(&known, "a.b"));
    CHECK(!nrpc__hb_known(&known, "a.c"));
    /* The first heartbeat is due one interval after the handler started:
     * half an interval of slack, so a fast rpc's lost reply shows in 1.5 s. */
    CHECK_INT(nrpc__hb_first(1000), 1500);
    CHECK_INT(nrpc__hb_watch(&known, "a.b", 1000, 10), 1510);
    CHECK(nrpc__hb_watch(&known, "a.b", 0, 10) == INT64_MAX); /* none asked for */
    {
        char m[NRPC_MAX_SUBJECT + 128];
        nrpc__hb_lost_message(m, sizeof m, "a.b", 1500);
        CHECK_STR(m, "no heartbeat from the replica running a.b for 1.5 s: it was lost (the "
                     "call may have run)");
    }
    /* Expected subjects: watched from the start without any heartbeat,
     * told twice is once, un-told is not known (learnt or not). */
    CHECK_INT(nrpc__hb_expect(&known, "e.x", 1), 0);
    CHECK_INT(nrpc__hb_expect(&known, "e.x", 1), 0);
    CHECK_INT(known.count, 2);
    CHECK_INT(nrpc__hb_watch(&known, "e.x", 1000, 0), 1500);
    CHECK_INT(nrpc__hb_expect(&known, "e.x", 0), 0);
    CHECK_INT(nrpc__hb_expect(&known, "e.x", 0), 0); /* not there: nothing to do */
    CHECK(!nrpc__hb_known(&known, "e.x"));
    CHECK_INT(nrpc__hb_expect(&known, "a.b", 1), 0); /* learnt, now expected */
    CHECK_INT(known.count, 1);
    /* Bounded: past the limit the learnt ones are forgotten and learnt
     * again; the expected ones stay. */
    for (i = 0; i < 3000; i++) {
        snprintf(subject, sizeof subject, "s.m%d", i);
        nrpc__hb_learn(&known, subject);
        CHECK(known.count <= 1024);
    }
    CHECK(nrpc__hb_known(&known, "s.m2999"));
    CHECK(nrpc__hb_known(&known, "a.b"));
    /* At most 1024 expected: the learnt ones make room, then it refuses. */
    for (i = 0; i < 1023; i++) {
        snprintf(subject, sizeof subject, "x.m%d", i);
        CHECK_INT(nrpc__hb_expect(&known, subject, 1), 0);
    }
    CHECK_INT(known.count, 1024);
    CHECK_INT(nrpc__hb_expect(&known, "x.full", 1), -1);
    CHECK(!nrpc__hb_known(&known, "x.full"));
    nrpc__hb_learn(&known, "l.full"); /* no room: stays unknown */
    CHECK(!nrpc__hb_known(&known, "l.full"));
    CHECK(nrpc__hb_known(&known, "x.m1022"));
    CHECK(nrpc__hb_known(&known, "a.b"));
    nrpc__hb_forget(&known);
    CHECK_INT(known.count, 0);
    nrpc_table_free(&known);
}

int
main(void)
{
    test_table();
    test_table_take_any_is_linear();
    test_access();
    test_numbers();
    test_backoff();
    test_ids();
    test_subjects();
    test_routes();
    test_msg_destroy();
    test_idempotency_keys();
    test_heartbeat_pieces();
    return check_done("test_pieces");
}
