/*
 * openapi_rest.c: the REST routes in the OpenAPI document (see
 * bridge/rest.h for what the gateway does with them).
 *
 * One operation per route, next to the POST /<service>.<method> of its rpc:
 *   parameters    each {name} of the path (in: path, required), and for a
 *                 GET or DELETE every other declared parameter (in: query)
 *   request body  for POST, PUT and PATCH: a JSON object of the parameters
 *                 the path does not bind
 *   responses     the route's status (200, 201 with Location, 204 with no
 *                 body) and the usual errors, 405 and 415 (a body that is
 *                 not JSON) added. Pure: no I/O.
 */
#include "pages.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* 1 if path has the segment {name}. */
static int
rest_in_path(const char *path, const char *name)
{
    char seg[NRPC_MAX_ROUTE + 3];
    snprintf(seg, sizeof seg, "{%s}", name);
    return strstr(path, seg) != NULL;
}

static json_t *
rest_operation(json_t *route)
{
    const char *method = json_string_value(json_object_get(route, "method"));
    const char *path = json_string_value(json_object_get(route, "path"));
    const char *subject = json_string_value(json_object_get(route, "subject"));
    const char *location = json_string_value(json_object_get(route, "location"));
    int status = (int)json_integer_value(json_object_get(route, "status"));
    int with_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                    strcmp(method, "PATCH") == 0;
    json_t *params = json_array(), *props = json_object(), *required = json_array();
    json_t *example = json_object(), *responses = json_object(), *op, *p, *ok;
    char service[NRPC_MAX_SUBJECT + 1], code[8];
    size_t i;
    static const struct {
        const char *code, *ref;
    } errors[] = {{"400", "BadRequest"}, {"404", "NotFound"},      {"405", "MethodNotAllowed"},
                  {"413", "TooLarge"},   {"415", "NotJson"},       {"500", "Internal"},
                  {"503", "Unavailable"}, {"504", "Timeout"}};

    snprintf(service, sizeof service, "%.*s", (int)strcspn(subject, "."), subject);
    json_array_foreach(json_object_get(route, "params"), i, p) {
        const char *name = json_string_value(json_object_get(p, "name"));
        int req = json_is_true(json_object_get(p, "required"));
        if (name == NULL)
            continue;
        if (rest_in_path(path, name)) {
            json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:o}", "name", name, "in",
                                                    "path", "required", 1, "schema",
                                                    gw_openapi_param_schema(p)));
        } else if (!with_body) {
            json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:o}", "name", name, "in",
                                                    "query", "required", req, "schema",
                                                    gw_openapi_param_schema(p)));
        } else {
            json_t *ex = json_object_get(p, "example");
            json_object_set_new(props, name, gw_openapi_param_schema(p));
            if (req)
                json_array_append_new(required, json_string(name));
            if (ex == NULL && req)
                ex = json_object_get(p, "default");
            if (ex != NULL || req)
                json_object_set_new(example, name, ex ? json_incref(ex) : json_string("string"));
        }
    }
    json_array_append_new(params,
                          json_pack("{s:s}", "$ref", "#/components/parameters/XTimeout"));
    json_array_append_new(params,
                          json_pack("{s:s}", "$ref", "#/components/parameters/Traceparent"));
    json_array_append_new(params,
                          json_pack("{s:s}", "$ref", "#/components/parameters/RequestId"));

    snprintf(code, sizeof code, "%d", status);
    if (status == 204) {
        ok = json_pack("{s:s}", "description", "done; no body");
    } else {
        ok = json_pack("{s:s, s:{s:{s:{}}}}", "description",
                       "the rpc's single result value, or {\"items\": result_args, "
                       "...result_kwargs} when it returns keywords or another number of values",
                       "content", "application/json", "schema");
        if (location && *location)
            json_object_set_new(ok, "headers",
                                json_pack("{s:{s:s, s:{s:s}}}", "Location", "description",
                                          location, "schema", "type", "string"));
    }
    json_object_set_new(responses, code, ok);
    for (i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        char ref[64];
        if (strcmp(errors[i].code, "415") == 0 && !with_body)
            continue;
        snprintf(ref, sizeof ref, "#/components/responses/%s", errors[i].ref);
        json_object_set_new(responses, errors[i].code, json_pack("{s:s}", "$ref", ref));
    }
    op = json_pack("{s:s++, s:[s], s:s, s:s, s:o, s:o}", "operationId", method, " ", path, "tags",
                   service, "summary", subject, "description",
                   "A REST route of the rpc: path, query and body fields are its keyword "
                   "arguments.",
                   "parameters", params, "responses", responses);
    if (with_body) {
        json_t *schema = json_pack("{s:s, s:o, s:b}", "type", "object", "properties", props,
                                   "additionalProperties",
                                   json_is_true(json_object_get(route, "varkw")));
        if (json_array_size(required))
            json_object_set(schema, "required", required);
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:{s:o, s:O}}}", "required", 0, "content",
                                      "application/json", "schema", schema, "example", example));
    } else {
        json_decref(props);
    }
    json_decref(required);
    json_decref(example);
    return op;
}

void
gw_openapi_add_rest(json_t *doc, json_t *routes)
{
    json_t *paths = json_object_get(doc, "paths"), *route;
    json_t *responses = json_object_get(json_object_get(doc, "components"), "responses");
    size_t i;

    if (!json_is_object(paths))
        return;
    json_array_foreach(routes, i, route) {
        const char *path = json_string_value(json_object_get(route, "path"));
        const char *method = json_string_value(json_object_get(route, "method"));
        char lower[8];
        size_t k;
        json_t *item;

        if (path == NULL || method == NULL || strlen(method) >= sizeof lower)
            continue;
        for (k = 0; method[k]; k++)
            lower[k] = (char)tolower((unsigned char)method[k]);
        lower[k] = '\0';
        item = json_object_get(paths, path);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, path, item);
        }
        json_object_set_new(item, lower, rest_operation(route));
    }
    if (json_is_object(responses)) {
        json_object_set_new(responses, "MethodNotAllowed",
                            json_pack("{s:s, s:{s:{s:{s:s}}}}", "description",
                                      "method_not_allowed: the path has other methods (Allow)",
                                      "content", "application/json", "schema", "$ref",
                                      "#/components/schemas/Error"));
        json_object_set_new(responses, "NotJson",
                            json_pack("{s:s, s:{s:{s:{s:s}}}}", "description",
                                      "unsupported_media_type: a body whose Content-Type is "
                                      "not JSON",
                                      "content", "application/json", "schema", "$ref",
                                      "#/components/schemas/Error"));
    }
}
