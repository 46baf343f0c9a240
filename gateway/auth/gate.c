/* gate.c: the permission check of one call (see gate.h). */
#include "gate.h"
#include "pages/pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATE_TOPIC_GATHER_MS 1000

/* The loop's access map (the catalog's latest snapshot), NULL before the
 * first gather. Borrowed until the loop's next catalog read. */
static const gw_access_map *
gate_map(gw_loop *l)
{
    const gw_catalog_snap *snap = gw_catalog_snapshot(l->catalog);
    return snap ? snap->access : NULL;
}

/* 1 if the loop's latest gather was flooded (pages.h). */
static int
gate_flooded(gw_loop *l)
{
    const gw_catalog_snap *snap = gw_catalog_snapshot(l->catalog);
    return snap != NULL && snap->flooded;
}

/* g->access: of the rpc, or (topics) what gw_topic_access says. */
static void
gate_lookup(gw_gate *g)
{
    gw_loop *l = g->l;

    if (!g->topic) {
        const char *access = gw_access_map_get(gate_map(l), g->subject, strlen(g->subject));
        g->access = NULL;
        if (access) {
            snprintf(g->access_buf, sizeof g->access_buf, "%s", access);
            g->access = g->access_buf;
        }
        return;
    }
    g->verdict = gw_topic_access(gate_map(l), l->cfg->auth, g->subject, g->prefix, g->op,
                                 g->access_buf, sizeof g->access_buf);
    g->access = g->verdict == GW_TOPIC_KNOWN ? g->access_buf : NULL;
}

/* The verdict, from the access and the identified caller. */
static void
gate_decide(gw_gate *g)
{
    const gw_auth *a = g->l->cfg->auth;

    if (g->topic && g->verdict == GW_TOPIC_NOBODY) {
        g->status = 403;
        snprintf(g->msg, sizeof g->msg, "nobody may %s %s through the gateway",
                 g->op == GW_TOPIC_PUBLISH ? "publish on" : "subscribe to", g->label);
        return;
    }
    if ((g->topic ? g->verdict == GW_TOPIC_UNKNOWN : g->access == NULL) && gate_flooded(g->l)) {
        /* The last gather was flooded (catalog.c): an rpc or topic it does
         * not list may be a service's whose reply was ignored, and treating
         * it as undeclared would open a scoped rpc to any signed-in caller. */
        g->status = 503;
        snprintf(g->msg, sizeof g->msg,
                 "the gateway cannot tell %s's access now: its last $SRV.INFO gather was "
                 "flooded",
                 g->label);
        return;
    }
    if (g->topic && g->prefix && g->verdict == GW_TOPIC_UNKNOWN) {
        /* No catalog at all: what is under the prefix is not known, and
         * guessing would let scoped topics through. */
        g->status = 503;
        snprintf(g->msg, sizeof g->msg, "the gateway cannot list the services' topics now");
        return;
    }
    g->status = gw_auth_decide(g->access, &g->p, g->label, g->msg, sizeof g->msg);
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
    gate_lookup(g);
    if (gate_identify(g))
        g->cb(g, g->closure);
}

static int gate_begin(gw_gate *g);

/* Zeroes g and sets what every check has: the subject (or topic) cut to
 * NRPC_MAX_SUBJECT (callers refuse longer ones before), the label, the
 * callback, and p when the caller is already identified. */
static void
gate_init(gw_gate *g, gw_loop *l, const char *subject, size_t len, const gw_principal *p,
          gw_gate_cb cb, void *closure)
{
    memset(g, 0, sizeof *g);
    g->l = l;
    g->cb = cb;
    g->closure = closure;
    if (p != NULL) {
        g->known = 1;
        g->p = *p;
    }
    if (len > NRPC_MAX_SUBJECT)
        len = NRPC_MAX_SUBJECT;
    memcpy(g->subject, subject, len);
    g->subject[len] = '\0';
    snprintf(g->label, sizeof g->label, "%s", g->subject);
}

int
gw_gate_start_as(gw_gate *g, gw_loop *l, const char *subject, size_t len, const gw_principal *p,
                 gw_gate_cb cb, void *closure)
{
    gate_init(g, l, subject, len, p, cb, closure);
    return gate_begin(g);
}

int
gw_gate_start_topic(gw_gate *g, gw_loop *l, const char *topic, int prefix, gw_topic_op op,
                    const gw_principal *p, gw_gate_cb cb, void *closure)
{
    gate_init(g, l, topic, strlen(topic), p, cb, closure);
    g->topic = 1;
    g->prefix = prefix;
    g->op = op;
    snprintf(g->label, sizeof g->label, "%s %s", prefix ? "prefix" : "topic", g->subject);
    return gate_begin(g);
}

int
gw_gate_start(gw_gate *g, gw_loop *l, const char *subject, size_t len, const char *authorization,
              gw_gate_cb cb, void *closure)
{
    gate_init(g, l, subject, len, NULL, cb, closure);
    if (authorization) {
        g->authorization = strndup(authorization, GW_AUTH_MAX_HEADER + 1);
        if (g->authorization == NULL) {
            g->status = 503;
            snprintf(g->msg, sizeof g->msg, "out of memory");
            return 1;
        }
    }
    return gate_begin(g);
}

/* The access, gathering once for an unknown subject, then identification. */
static int
gate_begin(gw_gate *g)
{
    gw_loop *l = g->l;

    gate_lookup(g);
    if (g->access == NULL && l->catalog && !(g->topic && g->verdict == GW_TOPIC_NOBODY)) {
        /* A new rpc, perhaps: gather once before deciding it is not public.
         * A topic gathers only when this loop has not in the last second
         * (else it is decided from the catalog as it is, fresh or not yet
         * gathered at all): free topics are many and often subscribed in
         * bursts, which must not all wait. */
        int refresh = !g->topic || !gw_catalog_gathered_within(l->catalog, GATE_TOPIC_GATHER_MS);
        g->refreshed = 1;
        g->waiting = 1;
        g->inside = 1;
        gw_catalog_get(l->catalog, GW_CATALOG_NOTIFY, refresh, gate_on_catalog, g);
        g->inside = 0;
        if (g->waiting)
            return 0;
        gate_lookup(g);
    }
    return gate_identify(g);
}

int
gw_gate_topic_now(gw_loop *l, const char *topic, gw_topic_op op, const gw_principal *p, char *msg,
                  size_t msglen)
{
    gw_gate g;

    gate_init(&g, l, topic, strlen(topic), p, NULL, NULL);
    g.topic = 1;
    g.op = op;
    snprintf(g.label, sizeof g.label, "topic %s", g.subject);
    gate_lookup(&g);
    if (op == GW_TOPIC_SUBSCRIBE && g.verdict == GW_TOPIC_UNKNOWN)
        g.verdict = GW_TOPIC_KNOWN; /* the default: an authenticated session */
    gate_decide(&g);
    snprintf(msg, msglen, "%s", g.msg);
    free(g.principal);
    return g.status;
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
