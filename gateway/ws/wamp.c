/*
 * wamp.c: WAMP v2 messages in JSON (the wamp.2.json serializer), without
 * I/O.
 *
 * A message is a JSON array whose first element is its type code; the rest
 * follows a fixed layout per type (the shapes table below, from the Basic
 * Profile's message table), optionally ending with Arguments (a list) and
 * ArgumentsKw (a dict, only after Arguments). Decoding checks the layout
 * completely, so the router only ever sees well-formed messages; whether
 * a URI is one we accept is the router's business. Unit-tested
 * (tests/unit/test_wamp.c) and fuzzed (tests/fuzz/fuzz_wamp.c).
 */
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Element kinds: I id, T message type (ERROR's request type), D dict,
 * U uri (string); a trailing '*' allows Arguments and ArgumentsKw. */
static const struct {
    int type;
    const char *name;
    const char *shape;
} wamp_shapes[] = {
    {WAMP_HELLO, "HELLO", "UD"},
    {WAMP_WELCOME, "WELCOME", "ID"},
    {WAMP_ABORT, "ABORT", "DU*"},
    {WAMP_GOODBYE, "GOODBYE", "DU"},
    {WAMP_CHALLENGE, "CHALLENGE", "UD"},
    {WAMP_AUTHENTICATE, "AUTHENTICATE", "UD"}, /* Signature (the ticket) in uri */
    {WAMP_ERROR, "ERROR", "TIDU*"},
    {WAMP_PUBLISH, "PUBLISH", "IDU*"},
    {WAMP_PUBLISHED, "PUBLISHED", "II"},
    {WAMP_SUBSCRIBE, "SUBSCRIBE", "IDU"},
    {WAMP_SUBSCRIBED, "SUBSCRIBED", "II"},
    {WAMP_UNSUBSCRIBE, "UNSUBSCRIBE", "II"},
    {WAMP_UNSUBSCRIBED, "UNSUBSCRIBED", "I"},
    {WAMP_EVENT, "EVENT", "IID*"},
    {WAMP_CALL, "CALL", "IDU*"},
    {WAMP_CANCEL, "CANCEL", "ID"},
    {WAMP_RESULT, "RESULT", "ID*"},
    {WAMP_REGISTER, "REGISTER", "IDU"},
    {WAMP_REGISTERED, "REGISTERED", "II"},
    {WAMP_UNREGISTER, "UNREGISTER", "II"},
    {WAMP_UNREGISTERED, "UNREGISTERED", "I"},
    {WAMP_INVOCATION, "INVOCATION", "IID*"},
    {WAMP_INTERRUPT, "INTERRUPT", "ID"},
    {WAMP_YIELD, "YIELD", "ID*"},
};

#define NSHAPES (sizeof wamp_shapes / sizeof wamp_shapes[0])

const char *
wamp_type_name(int type)
{
    size_t i;

    for (i = 0; i < NSHAPES; i++)
        if (wamp_shapes[i].type == type)
            return wamp_shapes[i].name;
    return NULL;
}

static int
wamp_fail(wamp_msg *m, char *err, size_t errlen, const char *fmt, const char *a, size_t idx)
{
    char what[64];

    snprintf(what, sizeof what, fmt, a ? a : "", idx);
    snprintf(err, errlen, "%s", what);
    json_decref(m->root);
    memset(m, 0, sizeof *m);
    return -1;
}

int
wamp_decode(const char *text, size_t len, wamp_msg *m, char *err, size_t errlen)
{
    json_error_t jerr;
    const char *shape = NULL, *name = NULL, *k;
    size_t n, i, nid = 0, fixed;
    json_t *v;
    json_int_t type;

    memset(m, 0, sizeof *m);
    m->root = json_loadb(text, len, 0, &jerr);
    if (m->root == NULL) {
        snprintf(err, errlen, "not JSON: %s", jerr.text);
        return -1;
    }
    if (!json_is_array(m->root) || json_array_size(m->root) == 0)
        return wamp_fail(m, err, errlen, "%snot a non-empty JSON array", NULL, 0);
    v = json_array_get(m->root, 0);
    if (!json_is_integer(v))
        return wamp_fail(m, err, errlen, "%sthe message type is not an integer", NULL, 0);
    type = json_integer_value(v);
    for (i = 0; i < NSHAPES; i++) {
        if (wamp_shapes[i].type == type) {
            shape = wamp_shapes[i].shape;
            name = wamp_shapes[i].name;
        }
    }
    if (shape == NULL)
        return wamp_fail(m, err, errlen, "%sunknown message type", NULL, 0);
    m->type = (int)type;

    n = json_array_size(m->root);
    fixed = strcspn(shape, "*");
    if (n < 1 + fixed)
        return wamp_fail(m, err, errlen, "%s: too few elements", name, 0);
    if (n > 1 + fixed + (shape[fixed] == '*' ? 2 : 0))
        return wamp_fail(m, err, errlen, "%s: too many elements", name, 0);

    for (i = 1, k = shape; *k && *k != '*'; k++, i++) {
        v = json_array_get(m->root, i);
        switch (*k) {
        case 'I':
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > WAMP_MAX_ID)
                return wamp_fail(m, err, errlen, "%s: element %zu is not an id in [1, 2^53]", name,
                                 i);
            m->id[nid++] = json_integer_value(v);
            break;
        case 'T':
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 255 ||
                wamp_type_name((int)json_integer_value(v)) == NULL)
                return wamp_fail(m, err, errlen, "%s: element %zu is not a message type", name, i);
            m->req_type = (int)json_integer_value(v);
            break;
        case 'D':
            if (!json_is_object(v))
                return wamp_fail(m, err, errlen, "%s: element %zu is not a dict", name, i);
            m->dict = v;
            break;
        case 'U':
            if (!json_is_string(v) || json_string_length(v) == 0 ||
                strlen(json_string_value(v)) != json_string_length(v))
                return wamp_fail(m, err, errlen, "%s: element %zu is not a URI", name, i);
            m->uri = json_string_value(v);
            break;
        }
    }
    if (i < n) {
        m->args = json_array_get(m->root, i);
        if (!json_is_array(m->args))
            return wamp_fail(m, err, errlen, "%s: Arguments (element %zu) is not a list", name, i);
    }
    if (i + 1 < n) {
        m->kwargs = json_array_get(m->root, i + 1);
        if (!json_is_object(m->kwargs))
            return wamp_fail(m, err, errlen, "%s: ArgumentsKw (element %zu) is not a dict", name,
                             i + 1);
    }
    return 0;
}

void
wamp_msg_free(wamp_msg *m)
{
    if (m == NULL)
        return;
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------
 * Encoding.
 */

/* Dumps msg (stolen) compactly. */
static char *
wamp_dump(json_t *msg)
{
    char *text;

    if (msg == NULL)
        return NULL;
    text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    return text;
}

/* Appends the optional Arguments/ArgumentsKw to msg (all stolen). An empty
 * kwargs is left out, and then an empty args too. */
static char *
wamp_dump_payload(json_t *msg, json_t *args, json_t *kwargs)
{
    int ok = msg != NULL;

    if (kwargs && json_object_size(kwargs) == 0) {
        json_decref(kwargs);
        kwargs = NULL;
    }
    if (args && kwargs == NULL && json_array_size(args) == 0) {
        json_decref(args);
        args = NULL;
    }
    if (kwargs && args == NULL)
        args = json_array();
    if (args && ok)
        ok = json_array_append_new(msg, args) == 0;
    else
        json_decref(args);
    if (kwargs && ok)
        ok = json_array_append_new(msg, kwargs) == 0;
    else
        json_decref(kwargs);
    if (!ok) {
        json_decref(msg);
        return NULL;
    }
    return wamp_dump(msg);
}

char *
wamp_encode_welcome(json_int_t session, const char *agent)
{
    return wamp_dump(json_pack("[iI{ss s{s{s{sb}} s{}}}]", WAMP_WELCOME, session, "agent",
                               agent ? agent : "natsrpc-gateway", "roles", "broker", "features",
                               "publisher_exclusion", 1, "dealer"));
}

char *
wamp_encode_welcome_auth(json_int_t session, const char *agent, const char *authid,
                         const char *authrole, const char *authmethod)
{
    return wamp_dump(json_pack("[iI{ss s{s{s{sb}} s{}} ss ss ss}]", WAMP_WELCOME, session,
                               "agent", agent ? agent : "natsrpc-gateway", "roles", "broker",
                               "features", "publisher_exclusion", 1, "dealer", "authid", authid,
                               "authrole", authrole, "authmethod", authmethod));
}

char *
wamp_encode_challenge(const char *method)
{
    return wamp_dump(json_pack("[is{}]", WAMP_CHALLENGE, method));
}

char *
wamp_encode_abort(const char *reason, const char *message)
{
    if (message)
        return wamp_dump(json_pack("[i{ss}s]", WAMP_ABORT, "message", message, reason));
    return wamp_dump(json_pack("[i{}s]", WAMP_ABORT, reason));
}

char *
wamp_encode_goodbye(const char *reason)
{
    return wamp_dump(json_pack("[i{}s]", WAMP_GOODBYE, reason));
}

char *
wamp_encode_error(int req_type, json_int_t request, const char *uri, json_t *args, json_t *kwargs)
{
    return wamp_dump_payload(json_pack("[iiI{}s]", WAMP_ERROR, req_type, request, uri), args,
                             kwargs);
}

char *
wamp_encode_subscribed(json_int_t request, json_int_t subscription)
{
    return wamp_dump(json_pack("[iII]", WAMP_SUBSCRIBED, request, subscription));
}

char *
wamp_encode_unsubscribed(json_int_t request)
{
    return wamp_dump(json_pack("[iI]", WAMP_UNSUBSCRIBED, request));
}

char *
wamp_encode_published(json_int_t request, json_int_t publication)
{
    return wamp_dump(json_pack("[iII]", WAMP_PUBLISHED, request, publication));
}

char *
wamp_encode_event(json_int_t subscription, json_int_t publication, const char *topic, json_t *args,
                  json_t *kwargs)
{
    json_t *msg =
        topic ? json_pack("[iII{ss}]", WAMP_EVENT, subscription, publication, "topic", topic)
              : json_pack("[iII{}]", WAMP_EVENT, subscription, publication);
    return wamp_dump_payload(msg, args, kwargs);
}

char *
wamp_encode_result(json_int_t request, json_t *args, json_t *kwargs)
{
    return wamp_dump_payload(json_pack("[iI{}]", WAMP_RESULT, request), args, kwargs);
}

const char *
wamp_error_uri(int code, const char *type)
{
    switch (code) {
    case NRPC_CODE_BAD_REQUEST: return "wamp.error.invalid_argument";
    case NRPC_CODE_NOT_FOUND: return "wamp.error.no_such_procedure";
    case NRPC_CODE_TOO_LARGE: return "wamp.error.payload_size_exceeded";
    case NRPC_CODE_TIMEOUT: return "wamp.error.timeout";
    case NRPC_CODE_UNAVAILABLE:
        return type && strcmp(type, "overloaded") == 0 ? "natsrpc.error.overloaded"
                                                       : "natsrpc.error.unavailable";
    default: return "natsrpc.error.internal";
    }
}

uint64_t
wamp_marker_parse(const char *data, size_t len)
{
    char text[24];
    int64_t v;

    /* Digits only (nrpc_parse_int64 takes a sign), and the canonical form:
     * the gateway writes "%" PRIu64, so "007" is not one of its markers. */
    if (data == NULL || len == 0 || len >= sizeof text || data[0] == '0')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (data[i] < '0' || data[i] > '9')
            return 0;
    memcpy(text, data, len);
    text[len] = '\0';
    if (nrpc_parse_int64(text, &v) != 0 || v <= 0)
        return 0;
    return (uint64_t)v;
}
