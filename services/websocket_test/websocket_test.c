/* websocket_test.c: websocket_test, the service behind the front end's
 * publish/subscribe demo.
 * Subjects: websocket_test.websocket_test, websocket_test.hello_websocket
 * (rpcs); it publishes on events.websocket_test.websocket_test.
 *
 * A browser subscribed (over the gateway's WAMP endpoint) to the topic
 * websocket_test.websocket_test sees every call of hello_websocket (POST
 * /websocket_test.hello_websocket, a WAMP CALL, a NATS request): the
 * handler publishes what it got on that topic. Topics and rpcs live in
 * two subject spaces: the topic "a.b" is the NATS subject "events.a.b"
 * (NRPC_EVENT_PREFIX), where no rpc listens. So the topic and the rpc
 * websocket_test.websocket_test share a name but never a message, and a
 * publication (the page's, or anyone's) never runs a handler: the page
 * publishes straight to the topic. */
#include <natsrpc.h>

#include "websocket_test.h"

#define EVENTS_TOPIC "websocket_test.websocket_test"

/* websocket_test() -> [[], {"yay": "yay"}] */
static void
websocket_test(nrpc_call *call)
{
    nrpc_reply(call, NULL, json_pack("{ss}", "yay", "yay"));
}

/* hello_websocket(*args, **kwargs): publishes [args, kwargs] unchanged to
 * websocket_test.websocket_test and returns [[], {}]. */
static void
hello_websocket(nrpc_call *call)
{
    nrpc_status st = nrpc_service_publish(nrpc_call_service(call), EVENTS_TOPIC,
                                          json_deep_copy(nrpc_call_varargs(call)),
                                          json_deep_copy(nrpc_call_varkw(call)));

    if (st != NRPC_OK) {
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, NULL, "cannot publish to %s: %s", EVENTS_TOPIC,
                  nrpc_status_text(st));
        return;
    }
    nrpc_reply(call, NULL, NULL);
}

static const nrpc_rpc websocket_test_rpcs[] = {
    {"websocket_test", websocket_test, NULL, "Answers [[], {\"yay\": \"yay\"}].", 0, NULL, NRPC_PUBLIC},
    {"hello_websocket", hello_websocket, NULL,
     "Publishes its [args, kwargs] to websocket_test.websocket_test.", NRPC_VARARGS | NRPC_VARKW, NULL,
     NRPC_PUBLIC},
    {NULL},
};

/* The page's demo topic: anyone may watch it; with auth on, publishing
 * on it from a browser needs the scope events:publish. */
static const nrpc_event websocket_test_topics[] = {
    {"websocket_test", "What hello_websocket got, and what pages publish: [args, kwargs].",
     NRPC_PUBLIC, "events:publish"},
    {NULL},
};

const nrpc_service_def websocket_test_service = {
    .name = "websocket_test",
    .version = "1.0.0",
    .description = "Publish/subscribe demo for the gateway's WebSocket (WAMP) endpoint.",
    .rpcs = websocket_test_rpcs,
    .topics = websocket_test_topics,
};
