/*
 * rest_http.h: REST routes on the HTTP side (rest_http.c). http.c asks
 * here whether a request is a REST route; a match becomes a subject and a
 * [[], kwargs] body that go down the same forward step as
 * POST /<service>.<method>, and the rpc's reply comes back here to become
 * the route's answer (201 + Location, 204, the single result value).
 */
#ifndef NRPC_GW_REST_HTTP_H
#define NRPC_GW_REST_HTTP_H

#include "gateway.h"

struct MHD_Response;

typedef struct gw_rest_req gw_rest_req;

/* Matches method and the request target exactly as the client sent it
 * (raw: still percent-encoded, with its query string; MHD's decoded path
 * cannot tell "a%2Fb" from "a/b") against the loop's table. NULL when no
 * route has the path: the catalog is asked to look again (bounded), and
 * the caller answers as before. Otherwise a new request state
 * (gw_rest_req_free) that either names the rpc to call
 * (gw_rest_req_subject) or carries an answer decided now
 * (gw_rest_req_error: 400, 405). content_type is the request's header
 * (NULL: none), checked once the body is known. */
gw_rest_req *gw_rest_req_begin(gw_catalog *catalog, const char *method, const char *raw_target,
                               const char *content_type);
/* The rpc subject (borrowed from q), or NULL when q carries an error. */
const char *gw_rest_req_subject(const gw_rest_req *q);
/* 1 when q carries an error decided at the start: *status, *type, *allow
 * (NULL or the Allow header of a 405) and *message are borrowed from q. */
int gw_rest_req_error(const gw_rest_req *q, int *status, const char **type, const char **allow,
                      const char **message);
/* The NATS request for the body (len bytes): *out new (free()), *outlen.
 * Returns 0, or an HTTP status (400, 415) with err and *type set. */
int gw_rest_req_body(gw_rest_req *q, const char *body, size_t len, char **out, size_t *outlen,
                     const char **type, char *err, size_t errlen);
/* The HTTP answer to the rpc's answer: code (0 for a reply) and *reply
 * (malloc'd, *len bytes; replaced: a 204 leaves NULL). Returns the HTTP
 * status. */
int gw_rest_req_answer(gw_rest_req *q, int code, char **reply, size_t *len);
/* Adds the answer's headers (Location) to resp. */
void gw_rest_req_headers(const gw_rest_req *q, struct MHD_Response *resp);
void gw_rest_req_free(gw_rest_req *q);

#endif /* NRPC_GW_REST_HTTP_H */
