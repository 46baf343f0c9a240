/*
 * natsrpc_http.h: outbound HTTP from handlers (library natsrpc_http, libcurl).
 *
 * Transfers run on the service's loop through libcurl's multi interface: no
 * thread per request (names in URLs are resolved by libcurl; IP literals and
 * reused connections need no resolver at all), connections kept and reused
 * per host, TLS verified, proxies taken from the environment as curl does
 * (http_proxy, https_proxy, no_proxy), http and https only, redirects
 * followed up to a limit, responses capped in size. Each request carries
 * the call's trace context (traceparent, a child span) and its X-Request-Id,
 * and never outlives the call's deadline.
 *
 * Everything here runs on the service's loop thread. The callback contract
 * of natsrpc.h holds: a request that nrpc_http_request accepted calls back
 * exactly once.
 */
#ifndef NATSRPC_HTTP_H
#define NATSRPC_HTTP_H

#include "natsrpc.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nrpc_http nrpc_http;

/** Starts outbound HTTP for svc (call it from on_start). *out is new:
 * nrpc_http_stop. */
nrpc_status nrpc_http_start(nrpc_http **out, nrpc_service *svc);

/** Ends every transfer (each calls back with NRPC_CODE_CANCELED first),
 * closes the connections and frees (call it from on_stop). NULL-safe. */
void nrpc_http_stop(nrpc_http *h);

/** One request. Strings are copied; nothing is borrowed past the call. */
typedef struct {
    const char *method;          /**< NULL: GET, or POST when there is a body */
    const char *url;             /**< http:// or https:// */
    const char *const *headers;  /**< NULL-terminated name, value pairs, or NULL */
    const char *body;            /**< request body, or NULL */
    size_t body_len;
    int64_t timeout_ms;          /**< <= 0: 30 s; never past the call's deadline */
    size_t max_response;         /**< bytes of body kept; 0: 8 MiB. Larger: 502 */
    int max_redirects;           /**< 0: 5; negative: redirects are not followed */
} nrpc_http_req;

/** A response: everything is borrowed for the callback. */
typedef struct nrpc_http_response nrpc_http_response;

/** HTTP status of the response (after redirects). */
long nrpc_http_status(const nrpc_http_response *r);
/** The body (NUL-terminated for convenience; "" when empty) and its length. */
const char *nrpc_http_body(const nrpc_http_response *r, size_t *len);
/** The first value of header name (case-insensitive), or NULL. */
const char *nrpc_http_header(const nrpc_http_response *r, const char *name);

/** Receives the end of a request, exactly once, on the loop thread:
 *   code 0     resp is the server's answer, whatever its HTTP status;
 *   502        no usable answer: DNS, connect, TLS, a reset, too many
 *              redirects, a body over max_response (error says which);
 *   504        no answer within the timeout or the call's deadline;
 *   NRPC_CODE_CANCELED  the call was answered first, or the service is
 *              stopping.
 * For codes other than 0, resp is NULL and error says why. */
typedef void (*nrpc_http_cb)(nrpc_call *call, int code, const nrpc_http_response *resp,
                             const char *error, void *arg);

/** Starts req for call and defers the call; holds a reference on call
 * until cb has run. Returns NRPC_ERR_INVALID_ARG (no URL, not http or
 * https), NRPC_ERR_NOMEM, or NRPC_ERR_STATE (stopped, call answered)
 * without calling back. */
nrpc_status nrpc_http_request(nrpc_http *h, nrpc_call *call, const nrpc_http_req *req,
                              nrpc_http_cb cb, void *arg);

/** Transfers in flight. */
int nrpc_http_pending(nrpc_http *h);

#ifdef __cplusplus
}
#endif
#endif /* NATSRPC_HTTP_H */
