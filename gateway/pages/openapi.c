/*
 * openapi.c: the OpenAPI 3.1 document of GET /openapi.json, built from the
 * services the catalog found (catalog.c's "services" array).
 *
 * One POST operation per rpc, at /<service>.<method>:
 *   request body  oneOf [args, kwargs] (prefixItems by position plus the
 *                 named keywords with their JSON types and defaults) and the
 *                 bare object of keywords; the declared parameters come from
 *                 the endpoint metadata "params" the services publish. Its
 *                 example, which Swagger UI's "Try it out" sends, is
 *                 [[], {every parameter: its example, else its default,
 *                 else a placeholder of its type}]: a call the rpc binds.
 *   200           [result_args, result_kwargs]
 *   400 404 413 500 503 504   {"error": {"code", "type", "message"}}
 *   security      from the endpoint's "access" (see openapi_security)
 * plus the gateway's own GET routes. Pure: no I/O, no globals.
 */
#include "pages.h"

#include <string.h>

/* JSON schema of one declared parameter (from the "params" metadata). */
static json_t *
openapi_param_schema(json_t *param)
{
    const char *type = json_string_value(json_object_get(param, "type"));
    const char *desc = json_string_value(json_object_get(param, "description"));
    json_t *def = json_object_get(param, "default");
    json_t *s = json_object();

    if (type && strcmp(type, "any") != 0) {
        /* A parameter whose default is null also accepts null. */
        if (json_is_null(def))
            json_object_set_new(s, "type", json_pack("[s, s]", type, "null"));
        else
            json_object_set_new(s, "type", json_string(type));
    }
    if (json_string_value(json_object_get(param, "name")))
        json_object_set(s, "title", json_object_get(param, "name"));
    if (desc && *desc)
        json_object_set_new(s, "description", json_string(desc));
    if (def)
        json_object_set(s, "default", def);
    if (json_object_get(param, "example"))
        json_object_set_new(s, "examples", json_pack("[O]", json_object_get(param, "example")));
    return s;
}

json_t *
gw_openapi_param_schema(json_t *param)
{
    return openapi_param_schema(param);
}

/* The value of a parameter in the example body: the example the service
 * declared, else the default, else a placeholder of the type. New. */
static json_t *
openapi_example_value(json_t *param)
{
    const char *type = json_string_value(json_object_get(param, "type"));
    json_t *v = json_object_get(param, "example");

    if (v == NULL)
        v = json_object_get(param, "default");
    if (v)
        return json_incref(v);
    if (type == NULL)
        return json_null();
    if (strcmp(type, "string") == 0)
        return json_string("string");
    if (strcmp(type, "number") == 0 || strcmp(type, "integer") == 0)
        return json_integer(0);
    if (strcmp(type, "boolean") == 0)
        return json_false();
    if (strcmp(type, "array") == 0)
        return json_array();
    if (strcmp(type, "object") == 0)
        return json_object();
    return json_null();
}

/* The request body schema and an example for an endpoint. params is the
 * parsed "params" array, or NULL when the service did not publish it. */
static json_t *
openapi_request_body(json_t *params, int varargs, int varkw)
{
    json_t *args_items, *props, *required, *args, *kwargs, *as_array, *as_object, *schema;
    json_t *example_kwargs, *p;
    size_t i;

    if (!json_is_array(params)) {
        schema = json_pack("{s:[{s:s, s:s, s:[{s:s}, {s:s}], s:b}, {s:s, s:s}]}", "oneOf", "type",
                           "array", "description", "[args, kwargs]", "prefixItems", "type", "array",
                           "type", "object", "items", 0, "type", "object", "description",
                           "keyword arguments");
        return json_pack("{s:b, s:{s:{s:o, s:[[], {}]}}}", "required", 0, "content",
                         "application/json", "schema", schema, "example");
    }
    args_items = json_array();
    props = json_object();
    required = json_array();
    example_kwargs = json_object();
    json_array_foreach(params, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (name == NULL)
            continue;
        json_array_append_new(args_items, openapi_param_schema(p));
        json_object_set_new(props, name, openapi_param_schema(p));
        json_object_set_new(example_kwargs, name, openapi_example_value(p));
        if (json_is_true(json_object_get(p, "required")))
            json_array_append_new(required, json_string(name));
    }
    args = json_pack("{s:s, s:s}", "type", "array", "description",
                     "positional arguments, bound to the parameters in order");
    /* JSON Schema wants prefixItems non-empty: with no parameters, "items"
     * alone says what is allowed. */
    if (json_array_size(args_items) > 0)
        json_object_set_new(args, "prefixItems", args_items);
    else
        json_decref(args_items);
    if (!varargs)
        json_object_set_new(args, "items", json_false());
    kwargs = json_pack("{s:s, s:s, s:O, s:b}", "type", "object", "description",
                       "keyword arguments, by parameter name", "properties", props,
                       "additionalProperties", varkw);
    as_array = json_pack("{s:s, s:s, s:[o, o], s:b}", "type", "array", "description",
                         "[args, kwargs] ([args], [] and an empty body too)", "prefixItems", args,
                         kwargs, "items", 0);
    as_object =
        json_pack("{s:s, s:s, s:o, s:b}", "type", "object", "description", "keyword arguments only",
                  "properties", props, "additionalProperties", varkw);
    if (json_array_size(required) > 0)
        json_object_set_new(as_object, "required", required);
    else
        json_decref(required);
    schema = json_pack("{s:[o, o]}", "oneOf", as_array, as_object);
    return json_pack("{s:b, s:{s:{s:o, s:[[], o]}}}", "required", 0, "content", "application/json",
                     "schema", schema, "example", example_kwargs);
}

/* Who may call an rpc, as OpenAPI says it: a public rpc has no
 * requirement; any other takes bearer or basic credentials, listing the
 * scopes it needs (OpenAPI 3.1 lets an http scheme name roles). The two
 * schemes are what Swagger UI's Authorize button offers. With auth off
 * (no GATEWAY_AUTH) the gateway does not enforce them; the document still
 * says what the services declare. */
static void
openapi_security(json_t *op, json_t *responses, const char *access)
{
    json_t *scopes = json_array(), *sec;
    const char *p;

    if (access && strcmp(access, NRPC_PUBLIC) == 0) {
        json_object_set_new(op, "security", json_array());
        json_decref(scopes);
        return;
    }
    if (access && strcmp(access, NRPC_AUTHENTICATED) != 0) {
        for (p = access; *p;) {
            size_t n = strcspn(p, " ");
            if (n > 0)
                json_array_append_new(scopes, json_stringn(p, n));
            p += n;
            while (*p == ' ')
                p++;
        }
    }
    sec = json_pack("[{s:O}, {s:O}]", "bearer", scopes, "basic", scopes);
    json_decref(scopes);
    json_object_set_new(op, "security", sec);
    json_object_set_new(responses, "401", json_pack("{s:s}", "$ref",
                                                    "#/components/responses/Unauthenticated"));
    json_object_set_new(responses, "403", json_pack("{s:s}", "$ref",
                                                    "#/components/responses/Forbidden"));
}

static json_t *
openapi_operation(const char *service, json_t *ep)
{
    const char *subject = json_string_value(json_object_get(ep, "subject"));
    const char *desc = json_string_value(json_object_get(ep, "description"));
    const char *access = json_string_value(json_object_get(ep, "access"));
    json_t *op, *responses;
    static const struct {
        const char *code, *ref;
    } errors[] = {{"400", "BadRequest"}, {"404", "NotFound"},    {"413", "TooLarge"},
                  {"500", "Internal"},   {"503", "Unavailable"}, {"504", "Timeout"}};
    size_t i;

    if (access == NULL) /* an older catalog: needs credentials, as the gate says */
        access = NRPC_AUTHENTICATED;
    responses = json_pack("{s:{s:s, s:{s:{s:s}, s:{s:s}}, s:{s:{s:{s:s}}}}}", "200", "description",
                          "[result_args, result_kwargs]", "headers", "traceparent", "$ref",
                          "#/components/headers/Traceparent", "X-Request-Id", "$ref",
                          "#/components/headers/RequestId", "content", "application/json", "schema",
                          "$ref", "#/components/schemas/Reply");
    for (i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        char ref[64];
        snprintf(ref, sizeof ref, "#/components/responses/%s", errors[i].ref);
        json_object_set_new(responses, errors[i].code, json_pack("{s:s}", "$ref", ref));
    }
    op =
        json_pack("{s:s, s:[s], s:s, s:[{s:s}, {s:s}, {s:s}, {s:s}], s:o, s:o}", "operationId",
                  subject, "tags", service, "summary", desc && *desc ? desc : subject, "parameters",
                  "$ref", "#/components/parameters/Timeout", "$ref",
                  "#/components/parameters/XTimeout", "$ref", "#/components/parameters/Traceparent",
                  "$ref", "#/components/parameters/RequestId", "requestBody",
                  openapi_request_body(json_object_get(ep, "params"),
                                       json_is_true(json_object_get(ep, "varargs")),
                                       json_is_true(json_object_get(ep, "varkw"))),
                  "responses", responses);
    json_object_set_new(op, "description",
                        json_sprintf("Sends the body as a NATS request on `%s` and answers with "
                                     "the reply. Access: `%s`.",
                                     subject, access));
    openapi_security(op, responses, access);
    return op;
}

static json_t *
openapi_error_response(const char *description)
{
    return json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", description, "content",
                     "application/json", "schema", "$ref", "#/components/schemas/Error");
}

static json_t *
openapi_components(void)
{
    json_t *c = json_object();

    json_object_set_new(
        c, "schemas",
        json_pack("{s:{s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}], s:b, s:i}, "
                  "s:{s:s, s:[s], s:b, s:{s:{s:s, s:[s, s, s], s:b, s:{s:{s:s}, s:{s:s}, "
                  "s:{s:s}}}}}}",
                  "Reply", "type", "array", "description", "[result_args, result_kwargs]",
                  "prefixItems", "type", "array", "description", "result_args", "type", "object",
                  "description", "result_kwargs", "items", 0, "minItems", 2, "Error", "type",
                  "object", "required", "error", "additionalProperties", 0, "properties", "error",
                  "type", "object", "required", "code", "type", "message", "additionalProperties",
                  0, "properties", "code", "type", "integer", "type", "type", "string", "message",
                  "type", "string"));
    json_object_set_new(
        c, "responses",
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "BadRequest",
                  openapi_error_response("invalid_argument: bad body, bad arguments or bad path"),
                  "NotFound", openapi_error_response("not_found: no such rpc"), "TooLarge",
                  openapi_error_response("too_large: the body is over the gateway's limit"),
                  "Internal", openapi_error_response("internal: the handler failed"), "Unavailable",
                  openapi_error_response("unavailable or overloaded: a dependency is down, "
                                         "NATS is down, or too many calls are in flight"),
                  "Timeout", openapi_error_response("timeout: no reply in time")));
    json_object_set_new(json_object_get(c, "responses"), "Unauthenticated",
                        openapi_error_response("unauthenticated: no or invalid credentials "
                                               "(WWW-Authenticate says which)"));
    json_object_set_new(json_object_get(c, "responses"), "Forbidden",
                        openapi_error_response("permission_denied: the credentials lack a scope "
                                               "the rpc needs"));
    json_object_set_new(
        c, "securitySchemes",
        json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}", "bearer", "type", "http", "scheme",
                  "bearer", "description",
                  "a static token or a JWT of the GATEWAY_AUTH file, or one its authorizer "
                  "accepts",
                  "basic", "type", "http", "scheme", "basic", "description",
                  "a user of the GATEWAY_AUTH file (bcrypt or yescrypt password)"));
    json_object_set_new(
        c, "parameters",
        json_pack("{s:{s:s, s:s, s:b, s:s, s:{s:s, s:i}}, s:{s:s, s:s, s:b, s:s, s:{s:s}}, "
                  "s:{s:s, s:s, s:b, s:s, s:{s:s, s:s}}, s:{s:s, s:s, s:b, s:s, s:{s:s}}}",
                  "Timeout", "name", "timeout", "in", "query", "required", 0, "description",
                  "seconds to wait for the reply (at most 300)", "schema", "type", "number",
                  "exclusiveMinimum", 0, "XTimeout", "name", "X-Timeout", "in", "header",
                  "required", 0, "description", "seconds to wait for the reply, as ?timeout",
                  "schema", "type", "string", "Traceparent", "name", "traceparent", "in", "header",
                  "required", 0, "description",
                  "W3C trace context; a new trace is started when absent or malformed", "schema",
                  "type", "string", "pattern", "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                  "RequestId", "name", "X-Request-Id", "in", "header", "required", 0, "description",
                  "request id for the logs; the trace id when absent", "schema", "type", "string"));
    json_object_set_new(
        c, "headers",
        json_pack("{s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}}", "Traceparent", "description",
                  "the trace context sent to the service", "schema", "type", "string", "RequestId",
                  "description", "the request id sent to the service", "schema", "type", "string"));
    return c;
}

/* The gateway's own routes. */
static void
openapi_gateway_paths(json_t *paths)
{
    static const struct {
        const char *path, *id, *summary, *type;
    } routes[] = {
        {"/healthz", "healthz", "200 while connected to NATS, else 503", "application/json"},
        {"/services", "services", "The services found through $SRV.INFO", "application/json"},
        {"/metadata", "metadata", "The gateway's name, version and API version",
         "application/json"},
        {"/metrics", "metrics", "Prometheus metrics", "text/plain"},
    };
    size_t i;

    for (i = 0; i < sizeof routes / sizeof routes[0]; i++)
        json_object_set_new(paths, routes[i].path,
                            json_pack("{s:{s:s, s:[s], s:s, s:{s:{s:s, s:{s:{}}}}}}", "get",
                                      "operationId", routes[i].id, "tags", "gateway", "summary",
                                      routes[i].summary, "responses", "200", "description", "OK",
                                      "content", routes[i].type));
}

json_t *
gw_openapi_build(json_t *services)
{
    json_t *doc, *paths = json_object(), *tags = json_array(), *svc, *ep;
    size_t i, j;

    json_array_foreach(services, i, svc)
    {
        const char *name = json_string_value(json_object_get(svc, "name"));
        const char *desc = json_string_value(json_object_get(svc, "description"));
        if (name == NULL)
            continue;
        json_array_append_new(tags, json_pack("{s:s, s:s}", "name", name, "description",
                                              desc && *desc ? desc : name));
        json_array_foreach(json_object_get(svc, "endpoints"), j, ep)
        {
            const char *subject = json_string_value(json_object_get(ep, "subject"));
            char path[512];
            /* Only what the gateway forwards; anything else is unreachable. */
            if (subject == NULL || !nrpc_subject_is_rpc(subject, strlen(subject)) ||
                strlen(subject) + 2 > sizeof path)
                continue;
            snprintf(path, sizeof path, "/%s", subject);
            json_object_set_new(paths, path,
                                json_pack("{s:o}", "post", openapi_operation(name, ep)));
        }
    }
    json_array_append_new(tags, json_pack("{s:s, s:s}", "name", "gateway", "description",
                                          "the gateway's own routes"));
    openapi_gateway_paths(paths);
    doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:o, s:o}", "openapi", "3.1.0",
                    "info", "title", "natsrpc gateway", "version", NRPC_VERSION, "description",
                    /* Markdown: outside a code span, <service> would be
                     * taken for an HTML tag and vanish from /docs. */
                    "Every rpc of the natsrpc services found on NATS, called with `POST "
                    "/<service>.<method>` and a body `[args, kwargs]`.",
                    "servers", "url", "/", "tags", tags, "paths", paths, "components",
                    openapi_components());
    return doc;
}
