/* test_wire.c: request decoding, reply encoding, error bodies, subjects. */
#include "internal.h"
#include "check.h"

#include <stdlib.h>

/* Decodes body and returns "[args, kwargs]" as text, or "ERR: message". */
static char *
decode(const char *body)
{
    json_t *a, *k;
    char err[256];
    char *out;

    if (nrpc_request_decode(body, body ? strlen(body) : 0, &a, &k, err, sizeof err) != 0) {
        out = malloc(strlen(err) + 6);
        sprintf(out, "ERR: %s", err);
        return out;
    }
    return nrpc_reply_encode(a, k);
}

static void
check_decode(const char *body, const char *expected)
{
    char *got = decode(body);
    CHECK_STR(got, expected);
    free(got);
}

static void
check_decode_fails(const char *body, const char *needle)
{
    char *got = decode(body);
    CHECK(strncmp(got, "ERR: ", 5) == 0);
    CHECK_CONTAINS(got, needle);
    free(got);
}

int
main(void)
{
    nats_Open(-1); /* natsMsg needs the library initialised */
    /* Every accepted form. */
    check_decode("[[\"Bob\"], {\"last_name\": \"Ross\"}]", "[[\"Bob\"], {\"last_name\": \"Ross\"}]");
    check_decode("[[\"Awake Bob\"]]", "[[\"Awake Bob\"], {}]");
    check_decode("[]", "[[], {}]");
    check_decode("", "[[], {}]");
    check_decode(NULL, "[[], {}]");
    check_decode("  \r\n\t", "[[], {}]");
    check_decode("{\"name\": \"x\"}", "[[], {\"name\": \"x\"}]");
    check_decode("[[], {}]", "[[], {}]");
    check_decode(" [ [1, 2.5, null, true] ] ", "[[1, 2.5, null, true], {}]");

    /* Everything else is refused with a message saying why. */
    check_decode_fails("[", "not valid JSON");
    check_decode_fails("nonsense", "not valid JSON");
    check_decode_fails("[[], {}] x", "not valid JSON");
    check_decode_fails("\"Bob\"", "must be [args, kwargs]");
    check_decode_fails("42", "must be [args, kwargs]");
    check_decode_fails("null", "must be [args, kwargs]");
    check_decode_fails("[[], {}, 3]", "must be [args, kwargs]");
    check_decode_fails("[\"Bob\"]", "args");
    check_decode_fails("[{}]", "args");
    check_decode_fails("[[], []]", "kwargs");
    check_decode_fails("[[], \"x\"]", "kwargs");
    check_decode_fails("{\"a\": 1, \"a\": 2}", "duplicate");
    check_decode_fails("[\"\\u0000\"]", "not valid JSON"); /* NUL in a string */

    /* Replies and errors. */
    {
        char *t = nrpc_reply_encode(NULL, NULL);
        CHECK_STR(t, "[[], {}]");
        free(t);
        t = nrpc__error_text(400, NULL, "bad \"x\"");
        CHECK_STR(t, "{\"error\": {\"code\": 400, \"type\": \"invalid_argument\", \"message\": "
                     "\"bad \\\"x\\\"\"}}");
        free(t);
        t = nrpc__error_text(503, "overloaded", "busy");
        CHECK_CONTAINS(t, "\"type\": \"overloaded\"");
        free(t);
    }
    {
        natsMsg *m = NULL;
        const char *v = NULL;
        CHECK_INT(nrpc__error_msg(&m, "_INBOX.x", 404, NULL, "no\r\nsuch"), NATS_OK);
        CHECK_INT(natsMsgHeader_Get(m, NRPC_HDR_ERROR_CODE, &v), NATS_OK);
        CHECK_STR(v, "404");
        CHECK_INT(natsMsgHeader_Get(m, NRPC_HDR_ERROR, &v), NATS_OK);
        CHECK_STR(v, "no  such"); /* header values stay on one line */
        CHECK_CONTAINS(natsMsg_GetData(m), "\"type\": \"not_found\"");
        natsMsg_Destroy(m);
    }
    CHECK_STR(nrpc_code_type(504), "timeout");
    CHECK_STR(nrpc_code_type(500), "internal");
    CHECK_STR(nrpc_code_type(418), "invalid_argument");

    /* Subjects a gateway may forward. */
#define SUBJ(s) nrpc_subject_is_rpc(s, strlen(s))
    CHECK(SUBJ("greeting_service.hello"));
    CHECK(SUBJ("a-b.c_d9"));
    CHECK(!SUBJ("greeting_service"));
    CHECK(!SUBJ("a.b.c"));
    CHECK(!SUBJ("a..b"));
    CHECK(!SUBJ(".a"));
    CHECK(!SUBJ("a."));
    CHECK(!SUBJ("a.*"));
    CHECK(!SUBJ("a.>"));
    CHECK(!SUBJ("$SRV.PING"));
    CHECK(!SUBJ("_INBOX.abc"));
    CHECK(SUBJ("_INBOXES.abc"));
    CHECK(!SUBJ("a b.c"));
    CHECK(!SUBJ(""));
    CHECK(!nrpc_subject_is_rpc("a.b\0c", 5));
    nats_Close();
    return check_done("test_wire");
}
