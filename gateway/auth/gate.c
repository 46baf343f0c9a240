/* gate.c: the permission check of one call (see gate.h). */
#include "gate.h"
#include "pages/pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
gw_gate_access(gw_loop *l, const char *subject, size_t len)
{
    if (l->catalog)
        gw_catalog_access(l->catalog, &l->access, &l->access_gen);
    return gw_access_map_get(l->access, subject, len);
}

void
gw_gate_loop_end(gw_loop *l)
{
    gw_access_map_unref(l->access);
    l->access = NULL;
}

/* The verdict, from the access and the identified caller. */
static void
gate_decide(gw_gate *g)
{
    const gw_auth *a = g->l->cfg->auth;

    g->status = gw_auth_decide(g->access, &g->p, g->subject, g->msg, sizeof g->msg);
    if (g->status == 401 && a != NULL)
        g->challenge = gw_auth_challenge(a, g->p.basic);
    else if (g->status == 0)
        g->principal = gw_principal_header(&g->p); /* NULL when anonymous */
}

static void
gate_on_identified(void *closure, gw_principal *p)
{
    gw_gate *g = closure;

    g->waiting = 0;
    gate_decide(g);
    g->cb(g, g->closure); /* never inline: gw_auth_identify returned 0 */
}

/* After the access is known (or known to be unknown). 1: decided. */
static int
gate_identify(gw_gate *g)
{
    if (g->known) {
        gate_decide(g);
        return 1;
    }
    if (g->authorization == NULL && g->access && strcmp(g->access, NRPC_PUBLIC) == 0)
        return 1; /* the cheap path: a public rpc, no credentials: status 0 */
    if (g->l->auth == NULL) {
        g->status = 503;
        snprintf(g->msg, sizeof g->msg, "the gateway is stopping");
        return 1;
    }
    g->waiting = 1;
    if (gw_auth_identify(g->l->auth, g->authorization, &g->p, gate_on_identified, g) == 0)
        return 0;
    g->waiting = 0;
    gate_decide(g);
    return 1;
}

static void
gate_on_catalog(void *closure, const char *text, size_t len)
{
    gw_gate *g = closure;

    g->waiting = 0;
    if (g->inside)
        return; /* answered at once: gw_gate_start goes on */
    g->access = gw_gate_access(g->l, g->subject, strlen(g->subject));
    if (gate_identify(g))
        g->cb(g, g->closure);
}

static int gate_begin(gw_gate *g, size_t len);

int
gw_gate_start_as(gw_gate *g, gw_loop *l, const char *subject, size_t len, const gw_principal *p,
                 gw_gate_cb cb, void *closure)
{
    memset(g, 0, sizeof *g);
    g->l = l;
    g->cb = cb;
    g->closure = closure;
    g->known = 1;
    g->p = *p;
    if (len > NRPC_MAX_SUBJECT)
        len = NRPC_MAX_SUBJECT;
    memcpy(g->subject, subject, len);
    g->subject[len] = '\0';
    return gate_begin(g, len);
}

int
gw_gate_start(gw_gate *g, gw_loop *l, const char *subject, size_t len, const char *authorization,
              gw_gate_cb cb, void *closure)
{
    memset(g, 0, sizeof *g);
    g->l = l;
    g->cb = cb;
    g->closure = closure;
    if (len > NRPC_MAX_SUBJECT)
        len = NRPC_MAX_SUBJECT; /* callers refuse longer subjects before */
    memcpy(g->subject, subject, len);
    g->subject[len] = '\0';
    if (authorization) {
        g->authorization = strndup(authorization, GW_AUTH_MAX_HEADER + 1);
        if (g->authorization == NULL) {
            g->status = 503;
            snprintf(g->msg, sizeof g->msg, "out of memory");
            return 1;
        }
    }
    return gate_begin(g, len);
}

/* The access, gathering once for an unknown subject, then identification. */
static int
gate_begin(gw_gate *g, size_t len)
{
    gw_loop *l = g->l;

    g->access = gw_gate_access(l, g->subject, len);
    if (g->access == NULL && l->catalog) {
        /* A new rpc, perhaps: gather once before deciding it is not public. */
        g->refreshed = 1;
        g->waiting = 1;
        g->inside = 1;
        gw_catalog_get(l->catalog, GW_CATALOG_NOTIFY, 1, gate_on_catalog, g);
        g->inside = 0;
        if (g->waiting)
            return 0;
        g->access = gw_gate_access(l, g->subject, len);
    }
    return gate_identify(g);
}

void
gw_gate_clear(gw_gate *g)
{
    if (g == NULL)
        return;
    free(g->authorization);
    free(g->principal);
    g->authorization = g->principal = NULL;
}
