/*
 * catalog.c: the services on NATS, for GET /services and GET /openapi.json.
 *
 * Each gateway loop gathers on its own NATS connection: $SRV.INFO,
 * scatter-gathered (nrpc_client_gather: every service instance answers;
 * replies are collected for GW_CATALOG_WAIT_MS), on demand, and on one loop
 * also every GW_CATALOG_REFRESH_MS. catalog_doc.c turns the replies into two
 * ready-made JSON texts, the services document and the OpenAPI document,
 * which replace the shared ones (gw_catalog_docs), so every loop answers
 * from the latest gather. A page request is answered from those texts at
 * once while they are fresh; when they are older than a refresh period
 * (NATS was down, or the gateway just started) or the caller asked for
 * ?refresh=1, the request waits for its loop's next gather, which every
 * request waiting on that loop shares: never more than one gather in
 * flight per loop. Gathers and callbacks run on the loop's thread.
 *
 * Everything else read from a gather is one snapshot (gw_catalog_snap):
 * the replies (each loop builds its REST table from them), the access map
 * (auth/) and the rpc set (metrics labels, heartbeats), built once per
 * gather, shared by reference. A loop takes the latest when the docs'
 * generation moved on, so its answers never mix two gathers.
 *
 * Heartbeats: the rpcs whose every service instance carries the INFO marker
 * NRPC_INFO_HEARTBEATS are marked in the rpc set; when a gather publishes a
 * changed set, every loop is woken (an async handle each) and tells its own
 * client the difference (nrpc_client_expect_heartbeats), so every call to
 * them is watched for heartbeats from the moment it is sent.
 */
#include "pages.h"
#include "bridge/rest.h"
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

typedef struct catalog_waiter {
    gw_catalog_doc doc;
    gw_catalog_cb cb;
    void *closure;
    struct catalog_waiter *next;
} catalog_waiter;

struct gw_catalog {
    nrpc_client *client; /* borrowed */
    gw_catalog_docs *docs; /* borrowed, shared */
    int periodic;
    uv_timer_t timer;    /* the next refresh */
    int stopping;
    int gathering;       /* a gather is in flight: its on_done is owed */
    int freed;           /* gw_catalog_free ran: free after the gather */
    catalog_waiter *waiters;
    json_t *replies;     /* of the gather in flight */
    int flooded;         /* it passed GW_CATALOG_MAX_REPLIES (logged once) */
    int64_t attempted_ms;
    gw_catalog_snap *snap;    /* the latest gather this loop has seen (a reference) */
    gw_rest *rest;            /* the loop's REST table (gw_catalog_rest) */
    uint64_t rest_generation; /* of the snapshot it was built from */
    int64_t missed_ms;       /* the last gather a REST miss started */
    uv_async_t hb_wake;      /* a gather published a new rpc set */
    gw_catalog_snap *hb_snap; /* whose rpc set the client was told (a reference) */
    gw_catalog *hb_next;     /* in docs->listeners, under docs->mu */
    int open_handles;        /* the timer and hb_wake until closed */
};

/* A sorted array of rpc subjects; hb[i]: every instance serving names[i]
 * sends progress heartbeats. */
struct gw_rpc_set {
    size_t n;
    char **names;
    unsigned char *hb;
};

typedef struct {
    char *name;
    unsigned char hb;
} rpc_item;

static int
rpcs_cmp(const void *a, const void *b)
{
    return strcmp(((const rpc_item *)a)->name, ((const rpc_item *)b)->name);
}

/* 1 if the INFO reply's service says it sends heartbeats. */
static int
info_heartbeats(json_t *info)
{
    const char *v = json_string_value(
        json_object_get(json_object_get(info, "metadata"), NRPC_INFO_HEARTBEATS));
    return v != NULL && strcmp(v, "true") == 0;
}

static void
rpcs_free(struct gw_rpc_set *set)
{
    size_t i;

    if (set == NULL)
        return;
    for (i = 0; i < set->n; i++)
        free(set->names[i]);
    free(set->names);
    free(set->hb);
    free(set);
}

/* The rpc subjects of INFO replies: new, or NULL when out of memory. */
static struct gw_rpc_set *
rpcs_build(json_t *infos)
{
    struct gw_rpc_set *set = calloc(1, sizeof *set);
    rpc_item *items = NULL;
    size_t i, j, cap = 0, k, n = 0;
    json_t *info, *ep;

    if (set == NULL)
        return NULL;
    json_array_foreach(infos, i, info) {
        unsigned char hb = (unsigned char)info_heartbeats(info);
        json_array_foreach(json_object_get(info, "endpoints"), j, ep) {
            const char *subj = json_string_value(json_object_get(ep, "subject"));
            if (subj == NULL || !nrpc_subject_is_rpc(subj, strlen(subj)))
                continue;
            if (n == cap) {
                rpc_item *more = realloc(items, (cap = cap ? cap * 2 : 16) * sizeof *items);
                if (more == NULL)
                    goto fail;
                items = more;
            }
            if ((items[n].name = strdup(subj)) == NULL)
                goto fail;
            items[n++].hb = hb;
        }
    }
    if (n > 1) {
        qsort(items, n, sizeof *items, rpcs_cmp);
        for (i = 1, k = 1; i < n; i++) { /* replicas list the same rpcs */
            if (strcmp(items[i].name, items[k - 1].name) == 0) {
                /* A caller may reach any of them: watched only when all
                 * send heartbeats (an older replica would look lost). */
                items[k - 1].hb &= items[i].hb;
                free(items[i].name);
            } else {
                items[k++] = items[i];
            }
        }
        n = k;
    }
    set->names = calloc(n ? n : 1, sizeof *set->names);
    set->hb = calloc(n ? n : 1, 1);
    if (set->names == NULL || set->hb == NULL)
        goto fail;
    for (i = 0; i < n; i++) {
        set->names[i] = items[i].name;
        set->hb[i] = items[i].hb;
    }
    set->n = n;
    free(items);
    return set;
fail:
    for (i = 0; i < n; i++)
        free(items[i].name);
    free(items);
    set->n = 0;
    rpcs_free(set);
    return NULL;
}

static int
rpcs_equal(const struct gw_rpc_set *a, const struct gw_rpc_set *b)
{
    size_t i;

    if (a == NULL || b == NULL || a->n != b->n)
        return a == b;
    for (i = 0; i < a->n; i++)
        if (strcmp(a->names[i], b->names[i]) != 0 || a->hb[i] != b->hb[i])
            return 0;
    return 1;
}

static gw_catalog_snap *
snap_ref(gw_catalog_snap *snap)
{
    if (snap)
        atomic_fetch_add(&snap->refs, 1);
    return snap;
}

static void
snap_unref(gw_catalog_snap *snap)
{
    if (snap == NULL || atomic_fetch_sub(&snap->refs, 1) != 1)
        return;
    json_decref(snap->infos);
    json_decref(snap->declared);
    gw_access_map_unref(snap->access);
    rpcs_free(snap->rpcs);
    free(snap);
}

/* The name a reply is filed under in the declared record. */
static const char *
declared_name(json_t *info)
{
    const char *name = json_string_value(json_object_get(info, "name"));
    return name ? name : "";
}

json_t *
gw_catalog_declared(json_t *infos, json_t *prev, size_t max_carried)
{
    size_t carried = 0;
    json_t *out = json_array(), *fresh = json_object(), *placed = json_object(), *info, *mine;
    size_t i;

    if (out == NULL || fresh == NULL || placed == NULL)
        goto fail;
    /* This gather's replies by service (a service's replicas together). */
    json_array_foreach(infos, i, info) {
        const char *name = declared_name(info);
        if ((mine = json_object_get(fresh, name)) == NULL &&
            json_object_set_new(fresh, name, mine = json_array()) != 0)
            goto fail;
        if (json_array_append(mine, info) != 0)
            goto fail;
    }
    /* The services known before keep their place, the oldest first, and
     * only they are carried when the bound is reached: a responder that
     * answers under ever new names, whose newcomers all miss the next
     * gather, cannot push out what a frozen service declared. */
    json_array_foreach(prev, i, info) {
        const char *name = declared_name(info);
        if ((mine = json_object_get(fresh, name)) != NULL) {
            if (json_object_get(placed, name) == NULL &&
                (json_array_extend(out, mine) != 0 ||
                 json_object_set(placed, name, json_true()) != 0))
                goto fail;
            continue;
        }
        if (carried == max_carried)
            continue; /* known since later than those carried */
        carried++;
        if (json_array_append(out, info) != 0)
            goto fail;
    }
    /* Then the services this gather met first. */
    json_array_foreach(infos, i, info) {
        if (json_object_get(placed, declared_name(info)) == NULL &&
            json_array_append(out, info) != 0)
            goto fail;
    }
    json_decref(fresh);
    json_decref(placed);
    return out;
fail:
    json_decref(out);
    json_decref(fresh);
    json_decref(placed);
    return NULL;
}

/* The snapshot of a gather's replies, with what prev's services that did
 * not answer it declared: new (one reference), NULL when out of memory. */
static gw_catalog_snap *
snap_build(json_t *infos, const gw_catalog_snap *prev)
{
    gw_catalog_snap *snap = calloc(1, sizeof *snap);

    if (snap == NULL)
        return NULL;
    atomic_init(&snap->refs, 1);
    snap->infos = json_incref(infos);
    snap->declared =
        gw_catalog_declared(infos, prev ? prev->declared : NULL, GW_CATALOG_MAX_CARRIED);
    if (snap->declared != NULL) {
        snap->access = gw_access_map_build(snap->declared);
        snap->rpcs = rpcs_build(snap->declared);
    }
    if (snap->infos == NULL || snap->access == NULL || snap->rpcs == NULL) {
        snap_unref(snap);
        return NULL;
    }
    return snap;
}

/* 1 if names[i] of set sends heartbeats. */
static int
rpcs_hb_at(const struct gw_rpc_set *set, size_t i)
{
    return set != NULL && i < set->n && set->hb[i];
}

/* Tells the loop's client what changed between the rpc set it was told and
 * the latest: both sorted, walked together. Loop thread. */
static void
catalog_hb_sync(gw_catalog *c)
{
    gw_catalog_snap *snap;
    const struct gw_rpc_set *now, *was;
    size_t i = 0, j = 0, n = 0, m = 0;
    int failed = 0;

    if (c->stopping)
        return;
    snap = (gw_catalog_snap *)gw_catalog_snapshot(c);
    if (snap == c->hb_snap)
        return;
    now = snap ? snap->rpcs : NULL;
    was = c->hb_snap ? c->hb_snap->rpcs : NULL;
    /* Equal sets: nothing to tell. Compared once, before the walk: inside
     * its condition every step would compare the whole sets again. */
    if (!rpcs_equal(now, was)) {
        n = now ? now->n : 0;
        m = was ? was->n : 0;
    }
    while (i < n || j < m) {
        int cmp = i == n ? 1 : j == m ? -1 : strcmp(now->names[i], was->names[j]);
        if (cmp < 0) { /* new */
            if (rpcs_hb_at(now, i) &&
                nrpc_client_expect_heartbeats(c->client, now->names[i], 1) != NRPC_OK)
                failed = 1;
            i++;
        } else if (cmp > 0) { /* gone */
            if (rpcs_hb_at(was, j))
                nrpc_client_expect_heartbeats(c->client, was->names[j], 0);
            j++;
        } else {
            if (now->hb[i] != was->hb[j] &&
                nrpc_client_expect_heartbeats(c->client, now->names[i], now->hb[i]) != NRPC_OK)
                failed = 1;
            i++;
            j++;
        }
    }
    if (failed) /* those are watched from their first heartbeat on */
        nrpc_log(NRPC_LOG_WARN, "catalog: some rpcs cannot be watched for heartbeats from the "
                                "start (out of memory, or over 1024)");
    snap_unref(c->hb_snap);
    c->hb_snap = snap_ref(snap);
}

static void
catalog_on_hb_wake(uv_async_t *a)
{
    catalog_hb_sync(a->data);
}

int
gw_catalog_known(gw_catalog *c, const char *subject, size_t len)
{
    const gw_catalog_snap *snap = gw_catalog_snapshot(c);
    const struct gw_rpc_set *set = snap ? snap->rpcs : NULL;
    size_t lo = 0, hi = set ? set->n : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strncmp(set->names[mid], subject, len);
        if (cmp == 0 && set->names[mid][len] != '\0')
            cmp = 1;
        if (cmp == 0)
            return 1;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

const gw_catalog_snap *
gw_catalog_snapshot(gw_catalog *c)
{
    gw_catalog_docs *d;
    uint64_t gen;

    if (c == NULL)
        return NULL;
    d = c->docs;
    gen = atomic_load_explicit(&d->generation, memory_order_acquire);
    if (c->snap == NULL ? gen != 0 : c->snap->generation != gen) {
        gw_catalog_snap *old = c->snap;
        pthread_mutex_lock(&d->mu);
        c->snap = snap_ref(d->snap);
        pthread_mutex_unlock(&d->mu);
        snap_unref(old);
    }
    return c->snap;
}

gw_catalog_docs *
gw_catalog_docs_of(gw_catalog *c)
{
    return c ? c->docs : NULL;
}

int
gw_catalog_docs_init(gw_catalog_docs *d)
{
    json_t *empty = json_array();
    int rc;

    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    rc = empty ? gw_catalog_build(empty, d->text, d->len) : -1;
    json_decref(empty);
    return rc;
}

void
gw_catalog_docs_free(gw_catalog_docs *d)
{
    free(d->text[0]);
    free(d->text[1]);
    d->text[0] = d->text[1] = NULL;
    json_decref(d->conflicts_logged);
    d->conflicts_logged = NULL;
    snap_unref(d->snap);
    d->snap = NULL;
    pthread_mutex_destroy(&d->mu);
}

/* Answers one page from the shared documents. */
static void
docs_answer(gw_catalog_docs *d, gw_catalog_doc doc, gw_catalog_cb cb, void *closure)
{
    if (doc == GW_CATALOG_NOTIFY) {
        cb(closure, NULL, 0);
        return;
    }
    pthread_mutex_lock(&d->mu);
    cb(closure, d->text[doc], d->len[doc]);
    pthread_mutex_unlock(&d->mu);
}

static void catalog_refresh(gw_catalog *c);

static void
catalog_on_timer(uv_timer_t *t)
{
    catalog_refresh(t->data);
}

/* The next background gather, on the loop that does them. */
static void
catalog_arm(gw_catalog *c, int64_t ms)
{
    if (!c->stopping && c->periodic)
        uv_timer_start(&c->timer, catalog_on_timer, (uint64_t)ms, 0);
}

/* Answers every waiter from the snapshot. */
static void
catalog_answer_waiters(gw_catalog *c)
{
    catalog_waiter *w = c->waiters, *next;

    c->waiters = NULL;
    for (; w; w = next) {
        next = w->next;
        docs_answer(c->docs, w->doc, w->cb, w->closure);
        free(w);
    }
}

static void
catalog_on_reply(const nrpc_response *resp, void *closure)
{
    gw_catalog *c = closure;
    json_t *info;
    const char *type;

    if (resp->code != 0 || c->replies == NULL)
        return;
    if (json_array_size(c->replies) >= GW_CATALOG_MAX_REPLIES) {
        /* Replicas answer once each: this many is a responder flooding
         * the gather, which must not grow the pages without bound. */
        if (!c->flooded)
            nrpc_log(NRPC_LOG_WARN, "catalog: more than %d $SRV.INFO replies to one gather; "
                                    "the rest are ignored",
                     GW_CATALOG_MAX_REPLIES);
        c->flooded = 1;
        return;
    }
    info = json_loadb(resp->data, resp->len, 0, NULL);
    type = json_string_value(json_object_get(info, "type"));
    if (type != NULL && strcmp(type, "io.nats.micro.v1.info_response") == 0)
        json_array_append(c->replies, info);
    json_decref(info);
}

static void catalog_release(gw_catalog *c);

/* Logs each REST conflict once while it lasts (whichever loop gathered),
 * under the documents' mutex. */
static void
catalog_log_conflicts(gw_catalog_docs *d, json_t *infos)
{
    json_t *conflicts = json_array(), *msg;
    gw_rest *t = gw_rest_build(infos, conflicts);
    size_t i, j;

    json_array_foreach(conflicts, i, msg) {
        json_t *old;
        json_array_foreach(d->conflicts_logged, j, old)
            if (json_equal(old, msg))
                break;
        if (j == json_array_size(d->conflicts_logged))
            nrpc_log(NRPC_LOG_WARN, "REST route conflict: %s", json_string_value(msg));
    }
    json_decref(d->conflicts_logged);
    d->conflicts_logged = conflicts;
    gw_rest_free(t);
}

static void
catalog_on_done(const nrpc_response *resp, void *closure)
{
    gw_catalog *c = closure;
    json_t *infos = c->replies;
    char *text[2] = {NULL, NULL};
    size_t len[2] = {0, 0};

    c->gathering = 0;
    c->replies = NULL;
    if (c->freed) {
        json_decref(infos);
        catalog_release(c);
        return;
    }
    /* 404: nobody answered, which is a valid (empty) catalog. */
    if ((resp->code == 0 || resp->code == NRPC_CODE_NOT_FOUND) &&
        gw_catalog_build(infos, text, len) == 0) {
        gw_catalog_docs *d = c->docs;
        gw_catalog_snap *snap = NULL, *old, *prev;
        int rpcs_changed = 0;
        pthread_mutex_lock(&d->mu);
        prev = snap_ref(d->snap);
        pthread_mutex_unlock(&d->mu);
        if (infos)
            snap = snap_build(infos, prev);
        if (snap != NULL)
            snap->flooded = c->flooded;
        snap_unref(prev);
        old = NULL;
        pthread_mutex_lock(&d->mu);
        free(d->text[0]);
        free(d->text[1]);
        d->text[0] = text[0];
        d->text[1] = text[1];
        d->len[0] = len[0];
        d->len[1] = len[1];
        d->updated_ms = nrpc_now_ms();
        if (snap != NULL) { /* out of memory: keep the last one */
            catalog_log_conflicts(d, infos);
            old = d->snap;
            rpcs_changed = !rpcs_equal(old ? old->rpcs : NULL, snap->rpcs);
            snap->generation = atomic_load(&d->generation) + 1;
            d->snap = snap;
            atomic_store_explicit(&d->generation, snap->generation, memory_order_release);
            if (rpcs_changed)
                for (gw_catalog *l = d->listeners; l; l = l->hb_next)
                    uv_async_send(&l->hb_wake); /* each loop tells its client */
        }
        pthread_mutex_unlock(&d->mu);
        snap_unref(old);
    }
    json_decref(infos);
    /* This loop's client at once, before the waiters hear of the gather
     * (the others when their wake-up runs). */
    catalog_hb_sync(c);
    catalog_answer_waiters(c);
    catalog_arm(c, GW_CATALOG_REFRESH_MS);
}

/* Starts a gather unless one is in flight; while NATS is down, answers the
 * waiters from what we have and tries again in GW_CATALOG_RETRY_MS. */
static void
catalog_refresh(gw_catalog *c)
{
    nrpc_status st = NRPC_ERR_STATE;

    if (c->gathering || c->stopping)
        return;
    c->attempted_ms = nrpc_now_ms();
    if (nrpc_client_connected(c->client)) {
        c->replies = json_array();
        c->flooded = 0;
        c->gathering = 1;
        st = nrpc_client_gather(c->client, "$SRV.INFO", NULL, 0, GW_CATALOG_WAIT_MS,
                                catalog_on_reply, catalog_on_done, c);
        if (st == NRPC_OK)
            return;
        c->gathering = 0;
        json_decref(c->replies);
        c->replies = NULL;
    }
    catalog_answer_waiters(c);
    catalog_arm(c, GW_CATALOG_RETRY_MS);
}

/* ---- API ---------------------------------------------------------------- */

nrpc_status
gw_catalog_start(gw_catalog **out, uv_loop_t *uv, nrpc_client *client, gw_catalog_docs *docs,
                 int periodic)
{
    gw_catalog *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NRPC_ERR_NOMEM;
    c->client = client;
    c->docs = docs;
    c->periodic = periodic;
    if (uv_async_init(uv, &c->hb_wake, catalog_on_hb_wake) != 0) {
        free(c);
        return NRPC_ERR_SYSTEM;
    }
    c->hb_wake.data = c;
    uv_timer_init(uv, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    pthread_mutex_lock(&docs->mu);
    c->hb_next = docs->listeners;
    docs->listeners = c;
    pthread_mutex_unlock(&docs->mu);
    catalog_hb_sync(c); /* another loop may have gathered already */
    catalog_arm(c, 0); /* the first gather as soon as the loop runs */
    *out = c;
    return NRPC_OK;
}

void
gw_catalog_get(gw_catalog *c, gw_catalog_doc doc, int refresh, gw_catalog_cb cb, void *closure)
{
    int64_t now = nrpc_now_ms(), updated;
    catalog_waiter *w;

    pthread_mutex_lock(&c->docs->mu);
    updated = c->docs->updated_ms;
    pthread_mutex_unlock(&c->docs->mu);
    /* Fresh enough, or we tried just now (NATS down): answer at once. */
    if (c->stopping ||
        (!refresh && updated != 0 &&
         now - updated <= GW_CATALOG_REFRESH_MS + GW_CATALOG_WAIT_MS + 500) ||
        (!refresh && c->attempted_ms != 0 && !c->gathering &&
         now - c->attempted_ms < GW_CATALOG_RETRY_MS)) {
        docs_answer(c->docs, doc, cb, closure);
        return;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        docs_answer(c->docs, doc, cb, closure);
        return;
    }
    w->doc = doc;
    w->cb = cb;
    w->closure = closure;
    w->next = c->waiters;
    c->waiters = w;
    catalog_refresh(c); /* no-op while a gather is in flight: it answers */
}

void
gw_catalog_stop(gw_catalog *c)
{
    if (c == NULL || c->stopping)
        return;
    c->stopping = 1;
    uv_timer_stop(&c->timer);
    /* No wake-up from other loops from now on: the handle may close. */
    pthread_mutex_lock(&c->docs->mu);
    for (gw_catalog **p = &c->docs->listeners; *p; p = &(*p)->hb_next)
        if (*p == c) {
            *p = c->hb_next;
            break;
        }
    pthread_mutex_unlock(&c->docs->mu);
    catalog_answer_waiters(c);
}

const gw_rest *
gw_catalog_rest(gw_catalog *c)
{
    const gw_catalog_snap *snap = gw_catalog_snapshot(c);
    gw_rest *t;

    if (snap == NULL || (c->rest != NULL && snap->generation == c->rest_generation))
        return c->rest;
    /* Another gather: build this loop's table from its replies, which the
     * snapshot holds and nobody modifies. */
    if ((t = gw_rest_build(snap->infos, NULL)) != NULL) {
        gw_rest_free(c->rest);
        c->rest = t;
        c->rest_generation = snap->generation;
    }
    return c->rest;
}

void
gw_catalog_rest_missed(gw_catalog *c)
{
    int64_t now = nrpc_now_ms();

    if (c->stopping || c->gathering ||
        (c->missed_ms != 0 && now - c->missed_ms < GW_REST_MISS_REFRESH_MS))
        return;
    c->missed_ms = now;
    catalog_refresh(c);
}

int
gw_catalog_gathered_within(gw_catalog *c, int64_t ms)
{
    return c->attempted_ms != 0 && nrpc_now_ms() - c->attempted_ms < ms;
}

static void
catalog_on_closed(uv_handle_t *h)
{
    gw_catalog *c = h->data;
    if (--c->open_handles > 0)
        return;
    gw_rest_free(c->rest);
    snap_unref(c->snap);
    snap_unref(c->hb_snap);
    free(c);
}

/* Frees c unless a gather still owes its on_done (the client calls it,
 * 503, when it is destroyed; catalog_on_done then comes back here). */
static void
catalog_release(gw_catalog *c)
{
    if (c->gathering)
        return;
    uv_close((uv_handle_t *)&c->timer, catalog_on_closed);
    uv_close((uv_handle_t *)&c->hb_wake, catalog_on_closed);
}

void
gw_catalog_free(gw_catalog *c)
{
    if (c == NULL)
        return;
    gw_catalog_stop(c);
    c->freed = 1;
    catalog_release(c);
}
