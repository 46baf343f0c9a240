/*
 * rest.h: REST routes of the gateway, from the rules services publish with
 * their rpcs ($SRV.INFO endpoint metadata "http", see nrpc_route in
 * natsrpc.h). No I/O: the table is built from INFO documents, a request is
 * matched and turned into [[], kwargs], and the rpc's reply into an HTTP
 * answer. Unit-tested and fuzzed.
 */
#ifndef NRPC_GW_REST_H
#define NRPC_GW_REST_H

#include <natsrpc.h>

#include <stddef.h>

typedef struct gw_rest gw_rest;

/* Builds a table from $SRV.INFO responses (a JSON array; replicas repeat
 * themselves, any order). Two rpcs declaring the same method and path (the
 * same shape: /things/{a} and /things/{b} are the same) are a conflict: the
 * first keeps the route: the service whose earliest instance started first
 * (INFO metadata "started"), then by service name, then method name; a message
 * per conflict is appended to conflicts (a JSON array, may be NULL). Rules
 * that do not parse or name undeclared parameters are reported there too
 * and skipped. Returns a new table (gw_rest_free); NULL when out of memory. */
gw_rest *gw_rest_build(json_t *infos, json_t *conflicts);
void gw_rest_free(gw_rest *t);
/* Routes in the table. */
size_t gw_rest_count(const gw_rest *t);

/* A request that matched: what to call and how to answer. */
typedef struct {
    char subject[NRPC_MAX_SUBJECT + 1];
    nrpc_route route;
    json_t *kwargs; /* new: path and query parameters so far, typed */
    json_t *params; /* borrowed from the table: the rpc's declared params */
    int varkw;      /* the rpc takes unknown keywords */
} gw_rest_call;

typedef enum {
    GW_REST_NONE = 0,   /* no route has this path */
    GW_REST_MATCH,      /* *out is filled (free with gw_rest_call_done) */
    GW_REST_METHOD,     /* the path exists for other methods: allow lists them */
    GW_REST_BAD,        /* the path matched but a parameter is wrong: err says */
} gw_rest_result;

/* Matches method and path (len bytes, still percent-encoded, no query) and
 * binds the query string (NULL or "a=1&b=x", percent-encoded) to the rpc's
 * declared parameters by their types. */
gw_rest_result gw_rest_match(const gw_rest *t, const char *method, const char *path, size_t len,
                             const char *query, gw_rest_call *out, char *allow, size_t allowlen,
                             char *err, size_t errlen);
void gw_rest_call_done(gw_rest_call *c);

/* The NATS request body for c: [[], kwargs], with the fields of a JSON
 * object body (len bytes; empty is none) added. *out is new (free()).
 * Returns 0, or -1 with a message for a 400. */
int gw_rest_request(gw_rest_call *c, const char *body, size_t len, char **out, char *err,
                    size_t errlen);

/* The HTTP answer to a successful reply ([args, kwargs] text): *status is
 * the route's status; *body (new, free(); NULL for 204) is args[0] when the
 * rpc returned one value and no keywords, else {"items": args, ...kwargs}
 * (so a list is the same shape for zero, one or many values); location
 * gets the route's Location ("" when none). Returns 0, or -1 when the reply
 * is not [args, kwargs] (a 502). */
int gw_rest_answer(const gw_rest_call *c, const char *reply, size_t len, int *status, char **body,
                   char *location, size_t loclen);

/* Every route as JSON, for /services and OpenAPI: [{"method", "path",
 * "status", "location", "subject", "params"}] (new). */
json_t *gw_rest_routes(const gw_rest *t);

#endif /* NRPC_GW_REST_H */
