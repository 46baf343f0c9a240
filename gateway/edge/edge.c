/*
 * edge.c: the limits of edge.h wired into one loop's libmicrohttpd daemon.
 *
 *   accept     gw_edge_accept, MHD's accept policy: a connection from an
 *              address that holds GATEWAY_MAX_CONNECTIONS_PER_ADDRESS
 *              already is closed before MHD sets anything up.
 *   open/close MHD_OPTION_NOTIFY_CONNECTION counts it in limits.c (exact,
 *              where the accept check can race with another loop: one
 *              over the cap is shut at once) and gives it a deadline for
 *              its first request's headers, GATEWAY_HEADER_TIMEOUT.
 *   deadline   a timer of the loop, every 250 ms, shuts (shutdown(2)) the
 *              sockets whose headers did not come in time; MHD sees the
 *              end of the stream and closes the connection itself. MHD's
 *              own timeout only counts silence, which a slowloris client
 *              never lets happen.
 *   request    gw_edge_request, at http.c's first call: the rate token and
 *              the CSRF/CORS rule of origin.c.
 *
 * Everything but limits.c's table runs on the loop's thread.
 */
#include "edge.h"
#include "bridge/bridge.h"

#include <microhttpd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define EDGE_TICK_MS 250
#define EDGE_SWEEP_MS 5000

typedef struct edge_conn {
    gw_edge *e;
    gw_addr *addr;
    MHD_socket fd;
    int64_t deadline_ms;           /* its first headers are due; 0 once in */
    struct edge_conn *prev, *next; /* in e->waiting, oldest first */
} edge_conn;

struct gw_edge {
    gw_loop *loop;
    uv_timer_t timer;
    int timer_up;
    edge_conn *head, *tail; /* waiting for their first headers */
    int64_t last_sweep_ms;
};

static void
waiting_unlink(gw_edge *e, edge_conn *c)
{
    if (c->deadline_ms == 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        e->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        e->tail = c->prev;
    c->prev = c->next = NULL;
    c->deadline_ms = 0;
}

static void
edge_on_timer(uv_timer_t *t)
{
    gw_edge *e = t->data;
    int64_t now = nrpc_now_ms();

    /* Every deadline is accept time plus the same timeout: the list is in
     * deadline order. */
    while (e->head && e->head->deadline_ms <= now) {
        edge_conn *c = e->head;
        waiting_unlink(e, c);
        shutdown(c->fd, SHUT_RDWR);
        gw_http_due(e->loop->http);
    }
    if (e->loop->index == 0 && now - e->last_sweep_ms >= EDGE_SWEEP_MS) {
        e->last_sweep_ms = now;
        gw_limits_sweep(e->loop->cfg, now);
    }
}

nrpc_status
gw_edge_start(gw_edge **out, gw_loop *l)
{
    gw_edge *e = calloc(1, sizeof *e);

    if (e == NULL)
        return NRPC_ERR_NOMEM;
    e->loop = l;
    e->last_sweep_ms = nrpc_now_ms();
    *out = e;
    return NRPC_OK;
}

void
gw_edge_arm(gw_edge *e)
{
    uv_timer_init(&e->loop->uv, &e->timer);
    e->timer.data = e;
    e->timer_up = 1;
    uv_timer_start(&e->timer, edge_on_timer, EDGE_TICK_MS, EDGE_TICK_MS);
}

void
gw_edge_close(gw_edge *e)
{
    if (e == NULL || !e->timer_up)
        return;
    e->timer_up = 0;
    uv_close((uv_handle_t *)&e->timer, NULL);
}

void
gw_edge_free(gw_edge *e)
{
    /* MHD_stop_daemon told us of every connection's close already. */
    free(e);
}

int
gw_edge_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    gw_edge *e = cls;
    uint8_t key[16];

    (void)len;
    if (gw_addr_key(addr, key) != 0)
        return MHD_YES;
    return gw_limits_may_accept(e->loop->cfg, key) ? MHD_YES : MHD_NO;
}

void
gw_edge_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context, int toe)
{
    gw_edge *e = cls;
    const gw_config *cfg = e->loop->cfg;
    edge_conn *c;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        c = *socket_context;
        if (c == NULL)
            return;
        waiting_unlink(e, c);
        gw_limits_close(c->addr);
        free(c);
        *socket_context = NULL;
        return;
    }
    {
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        uint8_t key[16];
        int over = 0;

        c = calloc(1, sizeof *c);
        if (c == NULL || ai == NULL || fi == NULL || gw_addr_key(ai->client_addr, key) != 0) {
            free(c);
            return; /* not counted: nothing to undo at close */
        }
        c->e = e;
        c->fd = fi->connect_fd;
        c->addr = gw_limits_open(cfg, key, &over);
        *socket_context = c;
        if (over) {
            /* Another loop took the last slot at the same moment. */
            shutdown(c->fd, SHUT_RDWR);
            return;
        }
        if (cfg->header_timeout_ms > 0) {
            c->deadline_ms = nrpc_now_ms() + cfg->header_timeout_ms;
            c->prev = e->tail;
            if (e->tail)
                e->tail->next = c;
            else
                e->head = c;
            e->tail = c;
        }
    }
}

int
gw_edge_request(gw_edge *e, struct MHD_Connection *conn, const char *method, gw_edge_req *rq,
                const char **type, const char **message)
{
    const gw_config *cfg = e->loop->cfg;
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    edge_conn *c = si ? si->socket_context : NULL;
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    gw_csrf_verdict v;

    *type = NULL;
    *message = NULL;
    if (c != NULL) {
        waiting_unlink(e, c);
        if (c->addr != NULL &&
            (rq->retry_after = gw_limits_take(cfg, c->addr, nrpc_now_ms())) > 0) {
            *type = "rate_limited";
            *message = "too many requests from this address (GATEWAY_RATE_LIMIT); retry after "
                       "the time in Retry-After";
            return 429;
        }
    }
    {
        const char *acrm =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
        if (gw_cors_is_preflight(method, origin, acrm)) {
            int status = gw_cors_preflight(origin, acrm, host, cfg->cors_origins, message);
            if (status != 204) {
                *type = "forbidden";
                return status;
            }
            rq->preflight = 1;
            rq->cors_origin = origin;
            return 0;
        }
    }
    gw_csrf_check(method, origin,
                  MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site"),
                  MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"), host,
                  cfg->cors_origins, &v);
    if (v.cors)
        rq->cors_origin = origin;
    if (v.status != 0) {
        *type = "forbidden";
        *message = v.message;
        return v.status;
    }
    return 0;
}

void
gw_edge_headers(const gw_edge_req *rq, struct MHD_Response *resp)
{
    if (rq->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", rq->cors_origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", GW_CORS_EXPOSE);
        if (rq->preflight) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", GW_CORS_METHODS);
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", GW_CORS_HEADERS);
            MHD_add_response_header(resp, "Access-Control-Max-Age", GW_CORS_MAX_AGE);
        }
    }
    /* The answer depends on Origin: caches must not hand it to another. */
    MHD_add_response_header(resp, "Vary", "Origin");
    if (rq->retry_after > 0) {
        char text[16];
        snprintf(text, sizeof text, "%d", rq->retry_after);
        MHD_add_response_header(resp, "Retry-After", text);
    }
}

int
gw_edge_body_grow(gw_edge *e, gw_edge_req *rq, size_t cap)
{
    if (cap <= rq->body_reserved)
        return 0;
    if (gw_body_reserve(e->loop->cfg, cap - rq->body_reserved) != 0)
        return -1;
    rq->body_reserved = cap;
    return 0;
}

void
gw_edge_done(gw_edge_req *rq)
{
    if (rq->body_reserved) {
        gw_body_release(rq->body_reserved);
        rq->body_reserved = 0;
    }
}
