/* test_gw_rest.c: the gateway's REST routes (gateway/rest.c): the table
 * from INFO documents, conflicts, matching and typed binding, request
 * bodies and answers. */
#include "check.h"
#include "rest.h"

#include <stdlib.h>
#include <string.h>

/* thing_service's INFO, as a service publishes it, and a second service
 * that declares GET /things too. */
static const char *INFOS =
    "[{\"name\": \"thing_service\", \"endpoints\": ["
    "{\"name\": \"get_things\", \"subject\": \"thing_service.get_things\", \"metadata\": {"
    "\"params\": \"[{\\\"name\\\":\\\"limit\\\",\\\"type\\\":\\\"integer\\\",\\\"default\\\":100},"
    "{\\\"name\\\":\\\"after\\\",\\\"type\\\":\\\"string\\\",\\\"default\\\":null}]\","
    "\"http\": \"[\\\"GET /things\\\"]\", \"varkw\": \"false\"}},"
    "{\"name\": \"create_thing\", \"subject\": \"thing_service.create_thing\", \"metadata\": {"
    "\"params\": \"[{\\\"name\\\":\\\"name\\\",\\\"type\\\":\\\"string\\\"}]\","
    "\"http\": \"[\\\"POST /things 201 /things/{uuid}\\\"]\"}},"
    "{\"name\": \"get_thing\", \"subject\": \"thing_service.get_thing\", \"metadata\": {"
    "\"params\": \"[{\\\"name\\\":\\\"uuid\\\",\\\"type\\\":\\\"string\\\"}]\","
    "\"http\": \"[\\\"GET /things/{uuid}\\\"]\"}},"
    "{\"name\": \"delete_thing\", \"subject\": \"thing_service.delete_thing\", \"metadata\": {"
    "\"params\": \"[{\\\"name\\\":\\\"uuid\\\",\\\"type\\\":\\\"string\\\"}]\","
    "\"http\": \"[\\\"DELETE /things/{uuid} 204\\\"]\"}},"
    "{\"name\": \"plain\", \"subject\": \"thing_service.plain\", \"metadata\": {\"params\": \"[]\"}}"
    "]},"
    "{\"name\": \"zz_copycat\", \"endpoints\": ["
    "{\"name\": \"list\", \"subject\": \"zz_copycat.list\", \"metadata\": {"
    "\"params\": \"[]\", \"http\": \"[\\\"GET /things\\\", \\\"BREW /x\\\"]\"}}]},"
    "{\"name\": \"thing_service\", \"endpoints\": ["
    "{\"name\": \"get_things\", \"subject\": \"thing_service.get_things\", \"metadata\": {"
    "\"params\": \"[]\", \"http\": \"[\\\"GET /things\\\"]\"}}]}]";

int
main(void)
{
    json_t *infos = json_loads(INFOS, 0, NULL), *conflicts = json_array();
    gw_rest *t;
    gw_rest_call c;
    char allow[64], err[256], loc[256], *out = NULL;
    int status;

    CHECK(infos != NULL);
    t = gw_rest_build(infos, conflicts);
    CHECK(t != NULL);
    CHECK_INT(gw_rest_count(t), 4); /* the replica's copy and the copycat are not routes */
    CHECK_INT(json_array_size(conflicts), 2);
    CHECK_STR(json_string_value(json_array_get(conflicts, 0)),
              "zz_copycat.list declares GET /things, which thing_service.get_things serves "
              "already");
    CHECK_CONTAINS(json_string_value(json_array_get(conflicts, 1)), "method must be");

    /* GET /things?limit=5 -> get_things(limit=5) */
    CHECK_INT(gw_rest_match(t, "GET", "/things", 7, "limit=5&after=x%20y", &c, allow,
                            sizeof allow, err, sizeof err),
              GW_REST_MATCH);
    CHECK_STR(c.subject, "thing_service.get_things");
    CHECK_INT(gw_rest_request(&c, "", 0, &out, err, sizeof err), 0);
    CHECK_STR(out, "[[], {\"limit\": 5, \"after\": \"x y\"}]");
    free(out);
    /* a list with a cursor answers {"items": [...], "next": ...} */
    {
        const char *reply = "[[[1, 2]], {\"next\": \"c\"}]";
        CHECK_INT(gw_rest_answer(&c, reply, strlen(reply), &status, &out, loc, sizeof loc), 0);
    }
    CHECK_INT(status, 200);
    CHECK_STR(out, "{\"next\":\"c\",\"items\":[[1,2]]}");
    free(out);
    /* one shape whatever the count of values: items is always result_args */
    {
        const char *reply = "[[1, 2], {\"next\": null}]";
        CHECK_INT(gw_rest_answer(&c, reply, strlen(reply), &status, &out, loc, sizeof loc), 0);
        CHECK_STR(out, "{\"next\":null,\"items\":[1,2]}");
        free(out);
        reply = "[[], {\"next\": null}]";
        CHECK_INT(gw_rest_answer(&c, reply, strlen(reply), &status, &out, loc, sizeof loc), 0);
        CHECK_STR(out, "{\"next\":null,\"items\":[]}");
        free(out);
        reply = "[[1, 2], {}]";
        CHECK_INT(gw_rest_answer(&c, reply, strlen(reply), &status, &out, loc, sizeof loc), 0);
        CHECK_STR(out, "{\"items\":[1,2]}");
    }
    free(out);
    gw_rest_call_done(&c);

    /* bad query parameters are 400s that name the parameter */
    CHECK_INT(gw_rest_match(t, "GET", "/things", 7, "limit=five", &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_BAD);
    CHECK_STR(err, "parameter 'limit' must be an integer, not 'five'");
    CHECK_INT(gw_rest_match(t, "GET", "/things", 7, "nope=1", &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_BAD);
    CHECK_STR(err, "unknown query parameter 'nope'");
    /* decoded bytes that are not UTF-8, in a value or a name: a 400 whose
     * message can be sent as JSON */
    CHECK_INT(gw_rest_match(t, "GET", "/things", 7, "after=%ff", &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_BAD);
    CHECK_STR(err, "parameter 'after' is not UTF-8 text");
    CHECK_INT(gw_rest_match(t, "GET", "/things", 7, "%c3%28=1", &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_BAD);
    CHECK_STR(err, "a query parameter's name is not UTF-8 text");
    CHECK_INT(gw_rest_match(t, "GET", "/things", 7, "limit=1&limit=2", &c, allow, sizeof allow,
                            err, sizeof err),
              GW_REST_BAD);
    CHECK_INT(gw_rest_match(t, "GET", "/things", 7, "limit=%zz", &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_BAD);
    CHECK_INT(gw_rest_match(t, "GET", "/things", 7, "limit=1%00", &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_BAD);

    /* POST /things {"name": "x"} -> 201, Location from the result */
    CHECK_INT(gw_rest_match(t, "POST", "/things", 7, NULL, &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_MATCH);
    CHECK_INT(gw_rest_request(&c, "{\"name\": \"x\"}", 13, &out, err, sizeof err), 0);
    CHECK_STR(out, "[[], {\"name\": \"x\"}]");
    free(out);
    CHECK_INT(gw_rest_request(&c, "[\"x\"]", 5, &out, err, sizeof err), -1);
    CHECK_CONTAINS(err, "must be a JSON object");
    CHECK_INT(gw_rest_request(&c, "{", 1, &out, err, sizeof err), -1);
    {
        const char *reply = "[[{\"uuid\": \"u-1\", \"name\": \"x\"}], {}]";
        CHECK_INT(gw_rest_answer(&c, reply, strlen(reply), &status, &out, loc, sizeof loc), 0);
        CHECK_INT(status, 201);
        CHECK_STR(loc, "/things/u-1");
        CHECK_STR(out, "{\"uuid\":\"u-1\",\"name\":\"x\"}");
        free(out);
    }
    CHECK_INT(gw_rest_answer(&c, "not json", 8, &status, &out, loc, sizeof loc), -1);
    gw_rest_call_done(&c);

    /* GET /things/{uuid}: the path binds; a body field may not repeat it */
    CHECK_INT(gw_rest_match(t, "GET", "/things/a%2Db", 13, "", &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_MATCH);
    CHECK_STR(c.subject, "thing_service.get_thing");
    CHECK_INT(gw_rest_request(&c, "{\"uuid\": \"z\"}", 13, &out, err, sizeof err), -1);
    CHECK_CONTAINS(err, "given twice");
    gw_rest_call_done(&c);
    /* the path parameter may not come again in the query */
    CHECK_INT(gw_rest_match(t, "GET", "/things/a", 9, "uuid=b", &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_BAD);

    /* DELETE -> 204, no body */
    CHECK_INT(gw_rest_match(t, "DELETE", "/things/a", 9, NULL, &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_MATCH);
    {
        const char *reply = "[[{\"uuid\": \"a\"}], {}]";
        CHECK_INT(gw_rest_answer(&c, reply, strlen(reply), &status, &out, loc, sizeof loc), 0);
    }
    CHECK_INT(status, 204);
    CHECK(out == NULL);
    gw_rest_call_done(&c);

    /* a served path with another method: 405 with Allow */
    CHECK_INT(gw_rest_match(t, "PATCH", "/things/a", 9, NULL, &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_METHOD);
    CHECK_STR(allow, "DELETE, GET");
    CHECK_INT(gw_rest_match(t, "GET", "/nothing", 8, NULL, &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_NONE);
    CHECK_INT(gw_rest_match(t, "GET", "/things/a/b", 11, NULL, &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_NONE);
    CHECK_INT(gw_rest_match(t, "GET", "/things/%2F", 11, NULL, &c, allow, sizeof allow, err,
                            sizeof err),
              GW_REST_NONE);

    {
        json_t *routes = gw_rest_routes(t);
        CHECK_INT(json_array_size(routes), 4);
        json_decref(routes);
    }
    gw_rest_free(t);
    json_decref(conflicts);
    json_decref(infos);

    /* The first service keeps a conflicting route: the one whose earliest
     * instance started first, whatever its name or the order of replies;
     * a service that does not say when it started comes after. */
    {
        const char *text =
            "[{\"name\": \"b_new\", \"metadata\": {\"started\": \"2026-01-02T00:00:00Z\"},"
            " \"endpoints\": [{\"name\": \"x\", \"subject\": \"b_new.x\", \"metadata\": "
            "{\"params\": \"[]\", \"http\": \"[\\\"GET /w\\\"]\"}}]},"
            " {\"name\": \"a_nodate\", \"endpoints\": [{\"name\": \"x\", \"subject\": "
            "\"a_nodate.x\", \"metadata\": {\"params\": \"[]\", \"http\": "
            "\"[\\\"GET /w\\\"]\"}}]},"
            " {\"name\": \"c_old\", \"metadata\": {\"started\": \"2026-01-03T00:00:00Z\"},"
            " \"endpoints\": [{\"name\": \"x\", \"subject\": \"c_old.x\", \"metadata\": "
            "{\"params\": \"[]\", \"http\": \"[\\\"GET /w\\\"]\"}}]},"
            " {\"name\": \"c_old\", \"metadata\": {\"started\": \"2026-01-01T00:00:00Z\"},"
            " \"endpoints\": []}]";
        infos = json_loads(text, 0, NULL);
        conflicts = json_array();
        CHECK(infos != NULL);
        t = gw_rest_build(infos, conflicts);
        CHECK_INT(gw_rest_count(t), 1);
        CHECK_INT(gw_rest_match(t, "GET", "/w", 2, NULL, &c, allow, sizeof allow, err,
                                sizeof err),
                  GW_REST_MATCH);
        CHECK_STR(c.subject, "c_old.x"); /* its other replica started on the 1st */
        gw_rest_call_done(&c);
        CHECK_INT(json_array_size(conflicts), 2);
        CHECK_STR(json_string_value(json_array_get(conflicts, 0)),
                  "b_new.x declares GET /w, which c_old.x serves already");
        CHECK_STR(json_string_value(json_array_get(conflicts, 1)),
                  "a_nodate.x declares GET /w, which c_old.x serves already");
        gw_rest_free(t);
        json_decref(conflicts);
        json_decref(infos);
    }
    return check_done("test_gw_rest");
}
