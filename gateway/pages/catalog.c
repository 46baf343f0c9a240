/*
 * catalog.c: the services on NATS, for GET /services and GET /openapi.json.
 *
 * A thread of its own scatter-gathers $SRV.INFO (nrpc_client_gather: every
 * service instance answers; replies are collected for GW_CATALOG_WAIT_MS),
 * every GW_CATALOG_REFRESH_MS and on demand, and turns the replies into two
 * ready-made JSON texts, the services document and the OpenAPI document.
 * A page request is answered from those texts at once while they are fresh;
 * when they are older than a refresh period (NATS was down, or the gateway
 * just started) or the caller asked for ?refresh=1, the request waits for
 * the next gather, which every waiting request shares: there is never more
 * than one gather in flight.
 */
#include "pages.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct catalog_waiter {
    gw_catalog_doc doc;
    gw_catalog_cb cb;
    void *closure;
    struct catalog_waiter *next;
} catalog_waiter;

struct gw_catalog {
    nrpc_client *client; /* borrowed */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int stopping;
    int want_refresh;
    catalog_waiter *waiters;
    /* the gather in flight */
    json_t *replies;
    int gather_done;
    int gather_code;
    /* the snapshot */
    char *text[2]; /* indexed by gw_catalog_doc */
    size_t len[2];
    int64_t updated_ms; /* monotonic; 0: never */
    int64_t attempted_ms;
};

/* ---- the gather --------------------------------------------------------- */

static void
catalog_on_reply(const nrpc_response *resp, void *closure)
{
    gw_catalog *c = closure;
    json_t *info;
    const char *type;

    if (resp->code != 0)
        return;
    info = json_loadb(resp->data, resp->len, 0, NULL);
    type = json_string_value(json_object_get(info, "type"));
    if (type == NULL || strcmp(type, "io.nats.micro.v1.info_response") != 0) {
        json_decref(info);
        return;
    }
    pthread_mutex_lock(&c->mu);
    if (c->replies)
        json_array_append(c->replies, info);
    pthread_mutex_unlock(&c->mu);
    json_decref(info);
}

static void
catalog_on_done(const nrpc_response *resp, void *closure)
{
    gw_catalog *c = closure;

    pthread_mutex_lock(&c->mu);
    c->gather_done = 1;
    c->gather_code = resp->code;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Answers every waiter from the snapshot. Locked. */
static void
catalog_answer_waiters(gw_catalog *c)
{
    catalog_waiter *w = c->waiters, *next;

    c->waiters = NULL;
    for (; w; w = next) {
        next = w->next;
        w->cb(w->closure, c->text[w->doc], c->len[w->doc]);
        free(w);
    }
}

/* One refresh. Locked on entry and exit; unlocked while publishing. */
static void
catalog_refresh(gw_catalog *c)
{
    nrpc_status st;
    json_t *infos;
    char *text[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    int ok;

    c->want_refresh = 0;
    c->attempted_ms = nrpc_now_ms();
    c->replies = json_array();
    c->gather_done = 0;
    c->gather_code = 0;
    pthread_mutex_unlock(&c->mu);
    st = nrpc_client_gather(c->client, "$SRV.INFO", NULL, 0, GW_CATALOG_WAIT_MS, catalog_on_reply,
                            catalog_on_done, c);
    pthread_mutex_lock(&c->mu);
    /* The callbacks always come (even while stopping): wait for the end. */
    while (st == NRPC_OK && !c->gather_done)
        pthread_cond_wait(&c->cv, &c->mu);
    infos = c->replies;
    c->replies = NULL;
    /* 404: nobody answered, which is a valid (empty) catalog. */
    ok = st == NRPC_OK && (c->gather_code == 0 || c->gather_code == NRPC_CODE_NOT_FOUND);
    pthread_mutex_unlock(&c->mu);
    if (ok && gw_catalog_build(infos, text, len) != 0)
        ok = 0;
    json_decref(infos);
    pthread_mutex_lock(&c->mu);
    if (ok) {
        free(c->text[0]);
        free(c->text[1]);
        c->text[0] = text[0];
        c->text[1] = text[1];
        c->len[0] = len[0];
        c->len[1] = len[1];
        c->updated_ms = nrpc_now_ms();
    }
    catalog_answer_waiters(c);
}

static void *
catalog_main(void *arg)
{
    gw_catalog *c = arg;

    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        int64_t due = c->attempted_ms + GW_CATALOG_REFRESH_MS;
        if (c->want_refresh || c->attempted_ms == 0 || nrpc_now_ms() >= due) {
            if (nrpc_client_connected(c->client)) {
                catalog_refresh(c);
                continue;
            }
            /* NATS down: answer from what we have, try again later. */
            c->want_refresh = 0;
            c->attempted_ms = nrpc_now_ms();
            catalog_answer_waiters(c);
            due = c->attempted_ms + GW_CATALOG_RETRY_MS;
        }
        {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000),
                                  .tv_nsec = (long)(due % 1000) * 1000000L};
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
    }
    catalog_answer_waiters(c);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- API ---------------------------------------------------------------- */

nrpc_status
gw_catalog_start(gw_catalog **out, nrpc_client *client)
{
    gw_catalog *c = calloc(1, sizeof *c);
    pthread_condattr_t ca;
    json_t *empty = json_array();

    if (c == NULL || empty == NULL) {
        free(c);
        json_decref(empty);
        return NRPC_ERR_NOMEM;
    }
    c->client = client;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* matches nrpc_now_ms */
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* Until the first gather: empty documents. */
    if (gw_catalog_build(empty, c->text, c->len) != 0) {
        json_decref(empty);
        gw_catalog_free(c);
        return NRPC_ERR_NOMEM;
    }
    json_decref(empty);
    if (pthread_create(&c->thread, NULL, catalog_main, c) != 0) {
        nrpc_log(NRPC_LOG_ERROR, "catalog: cannot start its thread: %s", strerror(errno));
        gw_catalog_free(c);
        return NRPC_ERR_SYSTEM;
    }
    c->started = 1;
    *out = c;
    return NRPC_OK;
}

void
gw_catalog_get(gw_catalog *c, gw_catalog_doc doc, int refresh, gw_catalog_cb cb, void *closure)
{
    int64_t now = nrpc_now_ms();
    catalog_waiter *w;

    pthread_mutex_lock(&c->mu);
    /* Fresh enough, or we tried just now (NATS down): answer at once. */
    if (c->stopping ||
        (!refresh && c->updated_ms != 0 &&
         now - c->updated_ms <= GW_CATALOG_REFRESH_MS + GW_CATALOG_WAIT_MS + 500) ||
        (!refresh && c->attempted_ms != 0 && c->replies == NULL &&
         now - c->attempted_ms < GW_CATALOG_RETRY_MS)) {
        cb(closure, c->text[doc], c->len[doc]);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        cb(closure, c->text[doc], c->len[doc]);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    w->doc = doc;
    w->cb = cb;
    w->closure = closure;
    w->next = c->waiters;
    c->waiters = w;
    c->want_refresh = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void
gw_catalog_stop(gw_catalog *c)
{
    if (c == NULL || !c->started)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    c->started = 0;
}

void
gw_catalog_free(gw_catalog *c)
{
    if (c == NULL)
        return;
    gw_catalog_stop(c);
    free(c->text[0]);
    free(c->text[1]);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
