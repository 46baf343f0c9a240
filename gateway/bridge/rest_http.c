/* rest_http.c: REST routes between http.c and the pure table of rest.c
 * (see rest_http.h). Runs on the loop's thread; the table is the loop's
 * own (gw_catalog_rest), so no lock is taken here. */
#include "rest_http.h"
#include "pages/pages.h"
#include "rest.h"

#include <microhttpd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct gw_rest_req {
    gw_catalog *catalog; /* borrowed: the loop's, lives longer than requests */
    gw_rest_call call;
    int matched;
    int status; /* of an error decided at the start; 0: none */
    const char *type;
    int json_body; /* the Content-Type allows a JSON body */
    char allow[64];
    char message[512];
    char location[NRPC_MAX_ROUTE * 3 + 1];
};

/* Content types a JSON body may come with: none, application/json, and
 * any application/<x>+json, with parameters (charset). */
static int
rest_json_type(const char *ct)
{
    size_t n;

    if (ct == NULL)
        return 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

gw_rest_req *
gw_rest_req_begin(gw_catalog *catalog, const char *method, const char *raw_target,
                  const char *content_type)
{
    const gw_rest *t = gw_catalog_rest(catalog);
    const char *query = strchr(raw_target, '?');
    size_t plen = query ? (size_t)(query - raw_target) : strlen(raw_target);
    char allow[sizeof ((gw_rest_req *)0)->allow], err[sizeof ((gw_rest_req *)0)->message];
    gw_rest_call call;
    gw_rest_result res;
    gw_rest_req *q;

    /* HEAD is a GET without the body (MHD drops it). */
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    res = gw_rest_match(t, method, raw_target, plen, query ? query + 1 : NULL, &call, allow,
                        sizeof allow, err, sizeof err);
    if (res == GW_REST_NONE) {
        gw_catalog_rest_missed(catalog);
        return NULL;
    }
    q = calloc(1, sizeof *q);
    if (q == NULL) {
        if (res == GW_REST_MATCH)
            gw_rest_call_done(&call);
        return NULL; /* answered as no route: the gateway is out of memory */
    }
    q->catalog = catalog;
    q->json_body = rest_json_type(content_type);
    switch (res) {
    case GW_REST_MATCH:
        q->call = call;
        q->call.params = NULL; /* the table's: it may be rebuilt before the body is in */
        q->matched = 1;
        break;
    case GW_REST_METHOD:
        q->status = 405;
        q->type = "method_not_allowed";
        snprintf(q->allow, sizeof q->allow, "%s", allow);
        snprintf(q->message, sizeof q->message, "%.12s is not allowed here; use %s", method,
                 allow);
        break;
    default:
        q->status = 400;
        q->type = "invalid_argument";
        snprintf(q->message, sizeof q->message, "%s", err);
        break;
    }
    return q;
}

const char *
gw_rest_req_subject(const gw_rest_req *q)
{
    return q->matched ? q->call.subject : NULL;
}

int
gw_rest_req_error(const gw_rest_req *q, int *status, const char **type, const char **allow,
                  const char **message)
{
    if (q->status == 0)
        return 0;
    *status = q->status;
    *type = q->type;
    *allow = q->allow[0] ? q->allow : NULL;
    *message = q->message;
    return 1;
}

int
gw_rest_req_body(gw_rest_req *q, const char *body, size_t len, char **out, size_t *outlen,
                 const char **type, char *err, size_t errlen)
{
    size_t i;

    *out = NULL;
    for (i = 0; i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' ||
                            body[i] == '\n');
         i++)
        ;
    if (i < len && !q->json_body) {
        /* Also what keeps a browser's form post (urlencoded, multipart or
         * text/plain, sent cross-site without a preflight) off REST routes. */
        *type = "unsupported_media_type";
        snprintf(err, errlen, "the body must be JSON (Content-Type: application/json)");
        return 415;
    }
    if (gw_rest_request(&q->call, body, len, out, err, errlen) != 0) {
        *type = "invalid_argument";
        return 400;
    }
    *outlen = strlen(*out);
    return 0;
}

/* 1 if an error body is the client's answer for a subject nobody serves. */
static int
rest_no_responder(const char *body, size_t len)
{
    json_t *e = json_loadb(body, len, 0, NULL);
    const char *msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
    int yes = msg && strncmp(msg, "no such rpc: ", 13) == 0;

    json_decref(e);
    return yes;
}

int
gw_rest_req_answer(gw_rest_req *q, int code, char **reply, size_t *len)
{
    char *body = NULL;
    int status;

    if (code != 0) {
        /* No responder (the client's "no such rpc", not the rpc's own 404):
         * the service is gone, and its routes should go too. */
        if (code == NRPC_CODE_NOT_FOUND && *reply && rest_no_responder(*reply, *len))
            gw_catalog_rest_missed(q->catalog);
        return code >= 400 && code <= 599 ? code : 500;
    }
    if (gw_rest_answer(&q->call, *reply ? *reply : "", *reply ? *len : 0, &status, &body,
                       q->location, sizeof q->location) != 0) {
        json_t *e = nrpc_error_body(502, "bad_gateway", "the rpc's reply is not [args, kwargs]");
        free(*reply);
        *reply = e ? json_dumps(e, JSON_COMPACT) : NULL;
        *len = *reply ? strlen(*reply) : 0;
        json_decref(e);
        return 502;
    }
    free(*reply);
    *reply = body;
    *len = body ? strlen(body) : 0;
    return status;
}

void
gw_rest_req_headers(const gw_rest_req *q, struct MHD_Response *resp)
{
    if (q->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, q->location);
}

void
gw_rest_req_free(gw_rest_req *q)
{
    if (q == NULL)
        return;
    if (q->matched)
        gw_rest_call_done(&q->call);
    free(q);
}
