/* test_wamp.c: WAMP v2 message decoding and encoding.
 * Includes gateway/ws/wamp.c so its functions are tested as compiled there. */
#include "../../gateway/ws/wamp.c"

#include "check.h"

static int
dec(const char *text, wamp_msg *m, char *err)
{
    return wamp_decode(text, strlen(text), m, err, 256);
}

/* Decodes text, checks the type, frees. */
static void
ok(const char *text, int type)
{
    char err[256] = "";
    wamp_msg m;

    if (dec(text, &m, err) != 0)
        fprintf(stderr, "should decode: %s (%s)\n", text, err);
    CHECK_INT(m.type, type);
    wamp_msg_free(&m);
}

static void
bad(const char *text, const char *why)
{
    char err[256] = "";
    wamp_msg m;
    int rc = dec(text, &m, err);

    if (rc != -1)
        fprintf(stderr, "should fail: %s\n", text);
    CHECK_INT(rc, -1);
    CHECK(m.root == NULL);
    CHECK_CONTAINS(err, why);
}

static void
test_every_type(void)
{
    char err[256];
    wamp_msg m;

    ok("[1, \"realm1\", {\"roles\": {\"caller\": {}}}]", WAMP_HELLO);
    ok("[2, 9007199254740992, {}]", WAMP_WELCOME);
    ok("[3, {}, \"wamp.error.no_such_realm\"]", WAMP_ABORT);
    ok("[3, {}, \"x.y\", [\"why\"], {\"a\": 1}]", WAMP_ABORT);
    ok("[6, {}, \"wamp.close.close_realm\"]", WAMP_GOODBYE);
    ok("[8, 48, 7, {}, \"wamp.error.no_such_procedure\"]", WAMP_ERROR);
    ok("[8, 32, 7, {}, \"wamp.error.invalid_uri\", [\"m\"], {}]", WAMP_ERROR);
    ok("[16, 1, {}, \"a.b\"]", WAMP_PUBLISH);
    ok("[16, 1, {\"acknowledge\": true}, \"a.b\", [1, 2], {\"k\": null}]", WAMP_PUBLISH);
    ok("[17, 1, 2]", WAMP_PUBLISHED);
    ok("[32, 1, {}, \"a.b\"]", WAMP_SUBSCRIBE);
    ok("[33, 1, 2]", WAMP_SUBSCRIBED);
    ok("[34, 1, 2]", WAMP_UNSUBSCRIBE);
    ok("[35, 1]", WAMP_UNSUBSCRIBED);
    ok("[36, 1, 2, {}, [], {\"x\": 1}]", WAMP_EVENT);
    ok("[48, 1, {}, \"greeting_service.hello\", [\"Bob\"], {\"last_name\": \"Ross\"}]", WAMP_CALL);
    ok("[49, 1, {}]", WAMP_CANCEL);
    ok("[50, 1, {}, [\"Hello, Bob Ross\"]]", WAMP_RESULT);
    ok("[64, 1, {}, \"a.b\"]", WAMP_REGISTER);
    ok("[65, 1, 2]", WAMP_REGISTERED);
    ok("[66, 1, 2]", WAMP_UNREGISTER);
    ok("[67, 1]", WAMP_UNREGISTERED);
    ok("[68, 1, 2, {}, [1]]", WAMP_INVOCATION);
    ok("[69, 1, {}]", WAMP_INTERRUPT);
    ok("[70, 1, {}, [], {}]", WAMP_YIELD);

    /* Fields land where the router reads them. */
    CHECK_INT(dec("[48, 12, {\"timeout\": 5}, \"a.b\", [1], {\"k\": 2}]", &m, err), 0);
    CHECK_INT(m.id[0], 12);
    CHECK_STR(m.uri, "a.b");
    CHECK_INT(json_integer_value(json_object_get(m.dict, "timeout")), 5);
    CHECK_INT(json_array_size(m.args), 1);
    CHECK_INT(json_integer_value(json_object_get(m.kwargs, "k")), 2);
    wamp_msg_free(&m);
    CHECK_INT(dec("[34, 3, 44]", &m, err), 0);
    CHECK_INT(m.id[0], 3);
    CHECK_INT(m.id[1], 44);
    CHECK(m.args == NULL && m.kwargs == NULL && m.uri == NULL);
    wamp_msg_free(&m);
    CHECK_INT(dec("[8, 16, 5, {}, \"e.f\"]", &m, err), 0);
    CHECK_INT(m.req_type, WAMP_PUBLISH);
    CHECK_INT(m.id[0], 5);
    wamp_msg_free(&m);
    wamp_msg_free(NULL);

    CHECK_STR(wamp_type_name(WAMP_SUBSCRIBE), "SUBSCRIBE");
    CHECK_STR(wamp_type_name(WAMP_CHALLENGE), "CHALLENGE");
    CHECK(wamp_type_name(7) == NULL);

    /* WAMP-Ticket (GATEWAY_AUTH): AUTHENTICATE's signature is the uri */
    CHECK_INT(dec("[5, \"tok-en\", {}]", &m, err), 0);
    CHECK_INT(m.type, WAMP_AUTHENTICATE);
    CHECK_STR(m.uri, "tok-en");
    wamp_msg_free(&m);
}

static void
test_malformed(void)
{
    bad("", "not JSON");
    bad("[1, \"realm1\", {}", "not JSON");
    bad("{\"type\": 1}", "not a non-empty JSON array");
    bad("[]", "not a non-empty JSON array");
    bad("\"hello\"", "not JSON"); /* jansson wants an array or object at the top */
    bad("[\"1\", \"realm1\", {}]", "type is not an integer");
    bad("[1.0, \"realm1\", {}]", "type is not an integer");
    bad("[99, 1]", "unknown message type");
    bad("[7, {}, {}]", "unknown message type");
    bad("[5, \"\", {}]", "AUTHENTICATE: element 1 is not a URI"); /* an empty ticket */
    bad("[5, \"t\"]", "AUTHENTICATE: too few elements");
    bad("[5, 7, {}]", "AUTHENTICATE: element 1 is not a URI");
    bad("[-1]", "unknown message type");
    bad("[1, \"realm1\"]", "HELLO: too few elements");
    bad("[1, \"realm1\", {}, 1]", "HELLO: too many elements");
    bad("[1, 1, {}]", "HELLO: element 1 is not a URI");
    bad("[1, \"\", {}]", "HELLO: element 1 is not a URI");
    bad("[1, \"realm1\", []]", "HELLO: element 2 is not a dict");
    bad("[1, \"realm1\", null]", "HELLO: element 2 is not a dict");
    bad("[32, 0, {}, \"a.b\"]", "SUBSCRIBE: element 1 is not an id");
    bad("[32, -5, {}, \"a.b\"]", "SUBSCRIBE: element 1 is not an id");
    bad("[32, 9007199254740993, {}, \"a.b\"]", "SUBSCRIBE: element 1 is not an id");
    bad("[32, 1.5, {}, \"a.b\"]", "SUBSCRIBE: element 1 is not an id");
    bad("[32, \"1\", {}, \"a.b\"]", "SUBSCRIBE: element 1 is not an id");
    bad("[32, 1, {}, \"a.b\", []]", "SUBSCRIBE: too many elements");
    bad("[34, 1]", "UNSUBSCRIBE: too few elements");
    bad("[16, 1, {}, \"a.b\", {}]", "PUBLISH: Arguments (element 4) is not a list");
    bad("[16, 1, {}, \"a.b\", [], []]", "PUBLISH: ArgumentsKw (element 5) is not a dict");
    bad("[16, 1, {}, \"a.b\", [], {}, 7]", "PUBLISH: too many elements");
    bad("[48, 1, \"opts\", \"a.b\"]", "CALL: element 2 is not a dict");
    bad("[48, 1, {}, null]", "CALL: element 3 is not a URI");
    bad("[48, 1, {}, \"a\\u0000b\"]", "not JSON"); /* jansson refuses NUL in strings */
    bad("[8, 999, 1, {}, \"e\"]", "ERROR: element 1 is not a message type");
    bad("[8, 0, 1, {}, \"e\"]", "ERROR: element 1 is not a message type");
    bad("[8, 4294967304, 1, {}, \"e\"]", "ERROR: element 1 is not a message type");
    bad("[8, \"48\", 1, {}, \"e\"]", "ERROR: element 1 is not a message type");
    bad("[6, {}]", "GOODBYE: too few elements");
    bad("[36, 1, 2, {}, \"args\"]", "EVENT: Arguments (element 4) is not a list");
    bad("[50, 1]", "RESULT: too few elements");
}

static void
check_enc(char *text, const char *want)
{
    CHECK_STR(text, want);
    free(text);
}

static void
test_encode(void)
{
    char *t;
    wamp_msg m;
    char err[256];

    t = wamp_encode_welcome(42, "natsrpc-gateway/test");
    CHECK_INT(dec(t, &m, err), 0);
    CHECK_INT(m.type, WAMP_WELCOME);
    CHECK_INT(m.id[0], 42);
    CHECK(json_object_get(json_object_get(m.dict, "roles"), "broker") != NULL);
    CHECK(json_object_get(json_object_get(m.dict, "roles"), "dealer") != NULL);
    CHECK(json_is_true(json_object_get(
        json_object_get(json_object_get(json_object_get(m.dict, "roles"), "broker"), "features"),
        "publisher_exclusion")));
    wamp_msg_free(&m);
    free(t);

    t = wamp_encode_welcome_auth(7, NULL, "alice", "user", "ticket");
    CHECK_INT(dec(t, &m, err), 0);
    CHECK_STR(json_string_value(json_object_get(m.dict, "authid")), "alice");
    CHECK_STR(json_string_value(json_object_get(m.dict, "authrole")), "user");
    CHECK_STR(json_string_value(json_object_get(m.dict, "authmethod")), "ticket");
    wamp_msg_free(&m);
    free(t);
    check_enc(wamp_encode_challenge("ticket"), "[4,\"ticket\",{}]");

    check_enc(wamp_encode_abort("wamp.error.protocol_violation", "bad"),
              "[3,{\"message\":\"bad\"},\"wamp.error.protocol_violation\"]");
    check_enc(wamp_encode_abort("wamp.error.no_such_realm", NULL),
              "[3,{},\"wamp.error.no_such_realm\"]");
    check_enc(wamp_encode_goodbye("wamp.close.goodbye_and_out"),
              "[6,{},\"wamp.close.goodbye_and_out\"]");
    check_enc(wamp_encode_subscribed(3, 9007199254740992LL), "[33,3,9007199254740992]");
    check_enc(wamp_encode_unsubscribed(4), "[35,4]");
    check_enc(wamp_encode_published(5, 6), "[17,5,6]");
    /* Empty trailing payloads are left out; kwargs alone brings an empty args. */
    check_enc(wamp_encode_event(1, 2, NULL, json_array(), json_object()), "[36,1,2,{}]");
    check_enc(wamp_encode_event(1, 2, NULL, NULL, NULL), "[36,1,2,{}]");
    check_enc(wamp_encode_event(1, 2, "a.b", json_pack("[s]", "websockets"),
                                json_pack("{ss}", "are", "awesome")),
              "[36,1,2,{\"topic\":\"a.b\"},[\"websockets\"],{\"are\":\"awesome\"}]");
    check_enc(wamp_encode_event(1, 2, NULL, json_array(), json_pack("{ss}", "yay", "yay")),
              "[36,1,2,{},[],{\"yay\":\"yay\"}]");
    check_enc(wamp_encode_result(7, json_pack("[s]", "Hello, Bob Ross"), json_object()),
              "[50,7,{},[\"Hello, Bob Ross\"]]");
    check_enc(wamp_encode_result(7, NULL, json_pack("{si}", "n", 1)), "[50,7,{},[],{\"n\":1}]");
    check_enc(wamp_encode_error(48, 9, "wamp.error.no_such_procedure", json_pack("[s]", "m"),
                                json_pack("{si}", "code", 404)),
              "[8,48,9,{},\"wamp.error.no_such_procedure\",[\"m\"],{\"code\":404}]");
    check_enc(wamp_encode_error(32, 9, "wamp.error.invalid_uri", NULL, NULL),
              "[8,32,9,{},\"wamp.error.invalid_uri\"]");
    /* Non-ASCII stays UTF-8. */
    check_enc(wamp_encode_event(1, 2, NULL, json_pack("[s]", "\xc3\xa9t\xc3\xa9"), NULL),
              "[36,1,2,{},[\"\xc3\xa9t\xc3\xa9\"]]");
}

static void
test_error_uris(void)
{
    CHECK_STR(wamp_error_uri(400, "invalid_argument"), "wamp.error.invalid_argument");
    CHECK_STR(wamp_error_uri(404, NULL), "wamp.error.no_such_procedure");
    CHECK_STR(wamp_error_uri(413, NULL), "wamp.error.payload_size_exceeded");
    CHECK_STR(wamp_error_uri(504, "timeout"), "wamp.error.timeout");
    CHECK_STR(wamp_error_uri(503, "unavailable"), "natsrpc.error.unavailable");
    CHECK_STR(wamp_error_uri(503, "overloaded"), "natsrpc.error.overloaded");
    CHECK_STR(wamp_error_uri(500, "internal"), "natsrpc.error.internal");
    CHECK_STR(wamp_error_uri(418, NULL), "natsrpc.error.internal");
}

static void
test_marker_parse(void)
{
    static const struct {
        const char *text;
        uint64_t want;
    } cases[] = {
        {"1", 1}, {"42", 42}, {"9223372036854775807", 9223372036854775807ULL},
        {"9223372036854775808", 0}, {"99999999999999999999999", 0}, {"0", 0}, {"007", 0},
        {"-1", 0}, {"+1", 0}, {" 1", 0}, {"1 ", 0}, {"1e3", 0}, {"0x10", 0}, {"", 0},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(wamp_marker_parse(cases[i].text, strlen(cases[i].text)) == cases[i].want);
    CHECK(wamp_marker_parse("12\0" "3", 4) == 0);
    CHECK(wamp_marker_parse("123", 2) == 12); /* len, not the NUL, ends it */
    CHECK(wamp_marker_parse(NULL, 0) == 0);
}

int
main(void)
{
    test_marker_parse();
    test_every_type();
    test_malformed();
    test_encode();
    test_error_uris();
    return check_done("test_wamp");
}
