/* test_thing.c: thing_service's input checks, in-process (no database: every
 * case here is refused before a query would run). */
#include "natsrpc.h"
#include "check.h"
#include "../../services/thing/thing.h"

#include <stdlib.h>
#include <string.h>

static void
expect(const char *method, const char *body, int code, const char *needle)
{
    char *out = NULL;
    int got = -1;
    CHECK_INT(nrpc_test_invoke(&thing_service, method, body, &got, &out), NRPC_OK);
    CHECK_INT(got, code);
    CHECK_CONTAINS(out, needle);
    free(out);
}

/* Who may call what: reads are public, writes need things:write. */
static void
test_access(void)
{
    static const char *const want[][2] = {
        {"create_thing", "things:write"}, {"get_things", "public"}, {"get_thing", "public"},
        {"rename_thing", "things:write"}, {"delete_thing", "things:write"},
    };
    const nrpc_rpc *r;
    size_t i, seen = 0;

    for (r = thing_service.rpcs; r->name; r++)
        for (i = 0; i < sizeof want / sizeof want[0]; i++)
            if (strcmp(r->name, want[i][0]) == 0) {
                CHECK_STR(r->access, want[i][1]);
                seen++;
            }
    CHECK_INT(seen, 5);
}

int
main(void)
{
    test_access();
    char buf[1024], big[1200];
    int i;

    CHECK(thing_uuid_valid("6f1c2a3b-0000-4000-8000-00000000abcd"));
    CHECK(thing_uuid_valid("6F1C2A3B-0000-4000-8000-00000000ABCD"));
    CHECK(!thing_uuid_valid("6f1c2a3b00004000800000000000abcd"));
    CHECK(!thing_uuid_valid("6f1c2a3b-0000-4000-8000-00000000abcg"));
    CHECK(!thing_uuid_valid("6f1c2a3b-0000-4000-8000-00000000abc"));
    CHECK(!thing_uuid_valid(""));
    CHECK(!thing_uuid_valid(NULL));

    CHECK_INT(thing_name_trim("  Alice \n", buf, sizeof buf), 5);
    CHECK_STR(buf, "Alice");
    CHECK_INT(thing_name_trim(" \t ", buf, sizeof buf), 0);
    CHECK_INT(thing_name_trim("h\xc3\xa9llo", buf, sizeof buf), 5); /* characters, not bytes */
    /* Unicode spaces count as whitespace, as Python's str.strip has it */
    CHECK_INT(thing_name_trim("\xe3\x80\x80", buf, sizeof buf), 0);            /* U+3000 */
    CHECK_INT(thing_name_trim("\xc2\xa0" "Bob" "\xe2\x80\x89 ", buf, sizeof buf), 3); /* U+00A0, U+2009 */
    CHECK_STR(buf, "Bob");
    CHECK_INT(thing_name_trim("B\xe2\x80\x8bo", buf, sizeof buf), 3); /* U+200B is not a space */
    CHECK_INT(thing_name_trim("\xe2\x80", buf, sizeof buf), 1);       /* a cut sequence stays */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(thing_name_trim(big, buf, sizeof buf), -1);

    expect("create_thing", "[[\"   \"]]", 400, "'name'");
    expect("create_thing", "[[\"\\u3000\\u00a0\"]]", 400, "'name'");
    expect("create_thing", "[[]]", 400, "missing required argument 'name'");
    for (i = 0; i < 201; i++)
        big[i] = 'a';
    big[201] = '\0';
    snprintf(buf, sizeof buf, "[[\"%.201s\"]]", big);
    expect("create_thing", buf, 400, "1 to 200 characters");
    expect("create_thing", "[[\"Alice\", \"\"]]", 400, "'request_id'");
    expect("get_things", "{\"limit\": 0}", 400, "'limit' must be between 1 and 1000");
    expect("get_things", "{\"limit\": 1001}", 400, "'limit'");
    expect("get_things", "{\"limit\": 1.5}", 400, "'limit' must be an integer");
    expect("get_things", "{\"after\": \"nonsense\"}", 400, "'after' is not a cursor");
    expect("get_thing", "[[\"nope\"]]", 400, "'uuid' is not a UUID");
    expect("rename_thing", "[[\"6f1c2a3b-0000-4000-8000-00000000abcd\", \"\"]]", 400, "'name'");
    expect("delete_thing", "[[\"x\"]]", 400, "'uuid' is not a UUID");
    return check_done("test_thing");
}
