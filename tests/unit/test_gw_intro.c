/* test_gw_intro.c: the gateway's introspection code that needs no network:
 * trace context (trace.c), metrics (metrics.c), page routing (pages.c) and
 * the services/OpenAPI documents (catalog.c's grouping, openapi.c). The
 * gateway files are compiled into this test as they are in the gateway. */
#include "pages/pages.h"

#include "check.h"

#include <stdlib.h>

static void
test_traceparent(void)
{
    nrpc_trace t;
    char prev[33];

    CHECK(nrpc_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    CHECK(!nrpc_traceparent_valid(NULL));
    CHECK(!nrpc_traceparent_valid(""));
    CHECK(!nrpc_traceparent_valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    CHECK(!nrpc_traceparent_valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    CHECK(!nrpc_traceparent_valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
    CHECK(!nrpc_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
    CHECK(!nrpc_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"));
    CHECK(!nrpc_traceparent_valid("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));

    nrpc_trace_begin(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL);
    CHECK_STR(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK_STR(t.request_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(nrpc_traceparent_valid(t.traceparent));
    CHECK(strncmp(t.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
    CHECK(strcmp(t.traceparent + 36, "00f067aa0ba902b7-01") != 0); /* a new span id */
    CHECK_STR(t.traceparent + 52, "-01");

    nrpc_trace_begin(&t, "garbage", "req-1");
    CHECK(nrpc_traceparent_valid(t.traceparent));
    CHECK_STR(t.request_id, "req-1");
    memcpy(prev, t.trace_id, sizeof prev);
    nrpc_trace_begin(&t, NULL, "has space");
    CHECK(strcmp(prev, t.trace_id) != 0);
    CHECK_STR(t.request_id, t.trace_id);
    CHECK(nrpc_request_id_valid("a"));
    CHECK(!nrpc_request_id_valid(""));
    {
        char longid[NRPC_REQUEST_ID_MAX + 2];
        memset(longid, 'x', sizeof longid - 1);
        longid[sizeof longid - 1] = '\0';
        CHECK(!nrpc_request_id_valid(longid));
        longid[NRPC_REQUEST_ID_MAX] = '\0';
        CHECK(nrpc_request_id_valid(longid));
    }
}

static void
test_metrics(void)
{
    gw_metrics *m = gw_metrics_new();
    gw_metrics_gauges g = {.in_flight = 3, .nats_connected = 1, .nats_reconnects = 2};
    char name[32], *text;
    size_t len = 0;
    int i;

    gw_metrics_observe(m, "svc.a", 5, 200, 0.002);
    gw_metrics_observe(m, "svc.a", 5, 200, 0.2);
    gw_metrics_observe(m, "svc.a", 5, 400, 100.0);
    gw_metrics_observe(m, NULL, 0, 400, 0.0001);
    for (i = 0; i < GW_METRICS_MAX_RPCS + 5; i++) {
        snprintf(name, sizeof name, "r%d.x", i);
        gw_metrics_observe(m, name, strlen(name), 404, 0.001);
    }
    text = gw_metrics_render(&m, 1, &g, &len);
    CHECK(text != NULL);
    CHECK_INT(strlen(text), len);
    CHECK_CONTAINS(text, "natsrpc_gateway_requests_total{rpc=\"svc.a\",status=\"200\"} 2\n");
    CHECK_CONTAINS(text, "natsrpc_gateway_requests_total{rpc=\"svc.a\",status=\"400\"} 1\n");
    CHECK_CONTAINS(text, "natsrpc_gateway_requests_total{rpc=\"invalid\",status=\"400\"} 1\n");
    /* svc.a took one of the named slots: 6 more go to "other" */
    CHECK_CONTAINS(text, "natsrpc_gateway_requests_total{rpc=\"other\",status=\"404\"} 6\n");
    CHECK_CONTAINS(
        text, "natsrpc_gateway_request_duration_seconds_bucket{rpc=\"svc.a\",le=\"0.0025\"} 1\n");
    CHECK_CONTAINS(text,
                   "natsrpc_gateway_request_duration_seconds_bucket{rpc=\"svc.a\",le=\"60\"} 2\n");
    CHECK_CONTAINS(
        text, "natsrpc_gateway_request_duration_seconds_bucket{rpc=\"svc.a\",le=\"+Inf\"} 3\n");
    CHECK_CONTAINS(text, "natsrpc_gateway_request_duration_seconds_count{rpc=\"svc.a\"} 3\n");
    CHECK_CONTAINS(text, "natsrpc_gateway_requests_in_flight 3\n");
    CHECK_CONTAINS(text, "natsrpc_gateway_nats_connected 1\n");
    CHECK_CONTAINS(text, "natsrpc_gateway_nats_reconnects_total 2\n");
    free(text);
    gw_metrics_free(m);
    gw_metrics_free(NULL);
    gw_metrics_observe(NULL, "a.b", 3, 200, 0);
}

/* Every loop counts in its own gw_metrics; /metrics adds them up, with an
 * rpc's statuses merged in order whichever loop saw them first. */
static void
test_metrics_of_several_loops(void)
{
    gw_metrics *m[3] = {gw_metrics_new(), gw_metrics_new(), NULL};
    gw_metrics_gauges g = {0};
    size_t len = 0;
    char *text;

    gw_metrics_observe(m[0], "svc.a", 5, 503, 0.002);
    gw_metrics_observe(m[0], "svc.a", 5, 200, 0.002);
    gw_metrics_observe(m[1], "svc.a", 5, 200, 0.2);
    gw_metrics_observe(m[1], "svc.b", 5, 404, 0.0001);
    text = gw_metrics_render(m, 3, &g, &len); /* a NULL instance is skipped */
    CHECK(text != NULL);
    CHECK_CONTAINS(text, "natsrpc_gateway_requests_total{rpc=\"svc.a\",status=\"200\"} 2\n"
                         "natsrpc_gateway_requests_total{rpc=\"svc.a\",status=\"503\"} 1\n"
                         "natsrpc_gateway_requests_total{rpc=\"svc.b\",status=\"404\"} 1\n");
    CHECK_CONTAINS(text, "natsrpc_gateway_request_duration_seconds_count{rpc=\"svc.a\"} 3\n");
    CHECK_CONTAINS(text, "natsrpc_gateway_request_duration_seconds_sum{rpc=\"svc.a\"} 0.204\n");
    free(text);
    gw_metrics_free(m[0]);
    gw_metrics_free(m[1]);
}

static void
test_pages(void)
{
    CHECK_INT(gw_page_match("/services"), GW_PAGE_SERVICES);
    CHECK_INT(gw_page_match("/openapi.json"), GW_PAGE_OPENAPI);
    CHECK_INT(gw_page_match("/metadata"), GW_PAGE_METADATA);
    CHECK_INT(gw_page_match("/metadata.json"), GW_PAGE_METADATA);
    CHECK_INT(gw_page_match("/v1.0/metadata"), GW_PAGE_METADATA);
    CHECK_INT(gw_page_match("/v1.0/metadata.json"), GW_PAGE_METADATA);
    CHECK_INT(gw_page_match("/metrics"), GW_PAGE_METRICS);
    CHECK_INT(gw_page_match("/docs"), GW_PAGE_DOCS);
    CHECK_INT(gw_page_match("/docs/"), GW_PAGE_DOCS);
    CHECK_INT(gw_page_match("/docs/swagger-ui.css"), GW_PAGE_DOCS_FILE);
    CHECK_INT(gw_page_match("/greeting_service.hello"), GW_PAGE_NONE);
    CHECK_INT(gw_page_match("/services/x"), GW_PAGE_NONE);
    CHECK_INT(gw_page_match(NULL), GW_PAGE_NONE);
}

static const char INFO_A[] =
    "{\"type\":\"io.nats.micro.v1.info_response\",\"name\":\"svc\",\"id\":\"B\",\"version\":"
    "\"1.0.0\",\"description\":\"d\",\"endpoints\":[{\"name\":\"add\",\"subject\":\"svc.add\","
    "\"queue_group\":\"q\",\"metadata\":{\"params\":\"[{\\\"name\\\":\\\"a\\\",\\\"type\\\":"
    "\\\"number\\\",\\\"required\\\":true,\\\"example\\\":2},{\\\"name\\\":\\\"b\\\",\\\"type\\\":"
    "\\\"integer\\\","
    "\\\"required\\\":false,\\\"default\\\":null}]\",\"description\":\"adds\",\"varargs\":"
    "\"false\",\"varkw\":\"true\"}}]}";
static const char INFO_B[] =
    "{\"type\":\"io.nats.micro.v1.info_response\",\"name\":\"svc\",\"id\":\"A\",\"version\":"
    "\"1.0.0\",\"description\":\"d\",\"endpoints\":[{\"name\":\"add\",\"subject\":\"svc.add\"},"
    "{\"name\":\"raw\",\"subject\":\"$odd.subject\"}]}";

static void
test_documents(void)
{
    json_t *infos = json_pack("[o, o]", json_loads(INFO_A, 0, NULL), json_loads(INFO_B, 0, NULL));
    json_t *svcs = gw_catalog_group(infos), *svc, *add, *doc, *op, *schema, *args, *kwargs;

    CHECK_INT(json_array_size(svcs), 1);
    svc = json_array_get(svcs, 0);
    CHECK_INT(json_array_size(json_object_get(svc, "instances")), 2);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(svc, "instances"), 0), "id")),
              "A");
    CHECK_INT(json_array_size(json_object_get(svc, "endpoints")), 2);
    add = json_array_get(json_object_get(svc, "endpoints"), 0);
    CHECK_STR(json_string_value(json_object_get(add, "name")), "add");
    CHECK(json_is_array(json_object_get(add, "params")));
    CHECK(json_is_true(json_object_get(add, "varkw")));

    doc = gw_openapi_build(svcs);
    CHECK_STR(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    /* Swagger UI renders descriptions as Markdown: <service> must sit in a
     * code span, or it is taken for an HTML tag and vanishes. */
    CHECK(strstr(json_string_value(json_object_get(json_object_get(doc, "info"), "description")),
                 "`POST /<service>.<method>`") != NULL);
    CHECK(json_object_get(json_object_get(doc, "paths"), "/$odd.subject") == NULL);
    op = json_object_get(json_object_get(json_object_get(doc, "paths"), "/svc.add"), "post");
    CHECK(op != NULL);
    schema = json_object_get(
        json_object_get(json_object_get(json_object_get(op, "requestBody"), "content"),
                        "application/json"),
        "schema");
    args = json_array_get(
        json_object_get(json_array_get(json_object_get(schema, "oneOf"), 0), "prefixItems"), 0);
    kwargs = json_array_get(
        json_object_get(json_array_get(json_object_get(schema, "oneOf"), 0), "prefixItems"), 1);
    CHECK(json_is_false(json_object_get(args, "items")));
    CHECK(json_is_true(json_object_get(kwargs, "additionalProperties")));
    {
        json_t *b = json_object_get(json_object_get(kwargs, "properties"), "b");
        char *t = json_dumps(json_object_get(b, "type"), JSON_COMPACT);
        CHECK_STR(t, "[\"integer\",\"null\"]");
        free(t);
        CHECK(json_is_null(json_object_get(b, "default")));
    }
    {
        /* The example binds: every parameter by name, with its example,
         * else its default. */
        char *t = json_dumps(
            json_object_get(
                json_object_get(json_object_get(json_object_get(op, "requestBody"), "content"),
                                "application/json"),
                "example"),
            JSON_COMPACT);
        CHECK_STR(t, "[[],{\"a\":2,\"b\":null}]");
        free(t);
        t = json_dumps(json_object_get(json_object_get(json_object_get(kwargs, "properties"), "a"),
                                       "examples"),
                       JSON_COMPACT);
        CHECK_STR(t, "[2]");
        free(t);
    }
    CHECK(json_object_get(json_object_get(op, "responses"), "504") != NULL);
    json_decref(doc);
    json_decref(svcs);
    json_decref(infos);
}

/* What the services declare: a service missing from a gather keeps its last
 * replies (every replica's), one that answers is read afresh, and carrying
 * over and over neither repeats nor grows. */
static void
test_declared(void)
{
    json_t *g1 = json_loads("[{\"name\": \"a\", \"id\": \"a1\"}, {\"name\": \"a\", \"id\": \"a2\"},"
                            " {\"name\": \"b\", \"id\": \"b1\"}, {\"id\": \"nameless\"}]", 0, NULL);
    json_t *g2 = json_loads("[{\"name\": \"b\", \"id\": \"b2\"}]", 0, NULL);
    json_t *g3 = json_loads("[{\"name\": \"a\", \"id\": \"a3\"}]", 0, NULL);
    json_t *empty = json_array();
    json_t *n1 = json_loads("[{\"name\": \"b\", \"id\": \"b2\"}, {\"name\": \"n1\", \"id\": \"n1\"},"
                            " {\"name\": \"n2\", \"id\": \"n2\"}, {\"name\": \"n3\", \"id\": \"n3\"}]",
                            0, NULL);
    json_t *n2 = json_loads("[{\"name\": \"m1\", \"id\": \"m1\"}, {\"name\": \"m2\", \"id\": \"m2\"},"
                            " {\"name\": \"m3\", \"id\": \"m3\"}]",
                            0, NULL);
    json_t *d1 = gw_catalog_declared(g1, NULL, 100), *d2, *d3, *d4, *d5, *d6, *f1, *f2, *f3;
    char *text;

#define IDS(d, want)                                                                               \
    do {                                                                                           \
        json_t *ids = json_array(), *v;                                                            \
        size_t k;                                                                                  \
        json_array_foreach(d, k, v) json_array_append(ids, json_object_get(v, "id"));            \
        text = json_dumps(ids, JSON_COMPACT);                                                      \
        CHECK_STR(text, want);                                                                     \
        free(text);                                                                                \
        json_decref(ids);                                                                          \
    } while (0)

    IDS(d1, "[\"a1\",\"a2\",\"b1\",\"nameless\"]");
    d2 = gw_catalog_declared(g2, d1, 100); /* a and the nameless one are missing */
    IDS(d2, "[\"a1\",\"a2\",\"b2\",\"nameless\"]"); /* b keeps its place */
    d3 = gw_catalog_declared(g3, d2, 100); /* a is back with one replica; b missing */
    IDS(d3, "[\"a3\",\"b2\",\"nameless\"]");
    d4 = gw_catalog_declared(empty, d3, 100); /* nobody answered */
    IDS(d4, "[\"a3\",\"b2\",\"nameless\"]");
    d5 = gw_catalog_declared(empty, d4, 100);
    IDS(d5, "[\"a3\",\"b2\",\"nameless\"]");
    d6 = gw_catalog_declared(g2, d5, 1); /* bounded: those met last go first */
    IDS(d6, "[\"a3\",\"b2\"]");
    json_decref(d6);
    /* Newcomers that miss the next gather, past the bound, cannot push out
     * a service met before them. */
    f1 = gw_catalog_declared(n1, d4, 2); /* a and the nameless one carried */
    IDS(f1, "[\"a3\",\"b2\",\"nameless\",\"n1\",\"n2\",\"n3\"]");
    f2 = gw_catalog_declared(n2, f1, 2); /* a and b carried: met before the n's */
    IDS(f2, "[\"a3\",\"b2\",\"m1\",\"m2\",\"m3\"]");
    f3 = gw_catalog_declared(empty, f2, 2); /* the m's miss in turn: a and b stay */
    IDS(f3, "[\"a3\",\"b2\"]");
    json_decref(f1);
    json_decref(f2);
    json_decref(f3);
    CHECK(json_array_get(d5, 0) == json_array_get(g3, 0)); /* shared, not copied */
#undef IDS
    json_decref(d1);
    json_decref(d2);
    json_decref(d3);
    json_decref(d4);
    json_decref(d5);
    json_decref(g1);
    json_decref(g2);
    json_decref(g3);
    json_decref(n1);
    json_decref(n2);
    json_decref(empty);
}

int
main(void)
{
    test_traceparent();
    test_metrics();
    test_metrics_of_several_loops();
    test_pages();
    test_documents();
    test_declared();
    return check_done("gw_intro");
}
