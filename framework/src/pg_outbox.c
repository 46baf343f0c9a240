/* pg_outbox.c: the relay of the transactional outbox (see natsrpc_pg.h):
 * rows that statements wrote to nrpc_outbox in their transaction are
 * emitted to JetStream and then marked sent.
 *
 * One pass at a time, on the loop thread:
 *   mark     ids stored by JetStream but not marked yet (a mark that failed)
 *   claim    up to BATCH pending rows of this service, oldest first, under
 *            a lease, so replicas share rows and a crashed relay's return
 *   emit     each row, its id as the event id (Nats-Msg-Id)
 *   mark     the ids JetStream acknowledged
 * then the next pass: at once when the batch was full or someone kicked,
 * after the poll interval when idle, after a backoff when something failed.
 * A row whose emit failed keeps its lease (claimed_by is ours, so our next
 * pass takes it again) and is retried.
 *
 * Lifetime: the pool owns one reference and the relay's emits one each
 * (their callbacks may come after the pool stopped: the service cancels
 * them at exit), so the relay is freed by whichever comes last. */
#include "pg_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BATCH 256
#define QUERY_TIMEOUT_MS 10000
#define RETRY_MIN_MS 200
#define RETRY_MAX_MS 5000

static const nrpc_pg_statement outbox_statements[] = {
    /* $1 service, $2 claimer, $3 lease seconds, $4 batch */
    {"nrpc_outbox_claim",
     "WITH c AS (UPDATE nrpc_outbox SET claimed_by = $2,"
     " claimed_until = now() + make_interval(secs => $3::int)"
     " WHERE id IN (SELECT id FROM nrpc_outbox WHERE service = $1 AND sent_at IS NULL"
     "   AND (claimed_until IS NULL OR claimed_until < now() OR claimed_by = $2)"
     "   ORDER BY seq LIMIT $4::int FOR UPDATE SKIP LOCKED)"
     " RETURNING id::text AS id, event, body, seq)"
     " SELECT id, event, body FROM c ORDER BY seq"},
    /* $1 '{id,...}' */
    {"nrpc_outbox_sent", "UPDATE nrpc_outbox SET sent_at = now(), claimed_by = NULL,"
                         " claimed_until = NULL WHERE id = ANY($1::uuid[]) AND sent_at IS NULL"},
    /* $1 service, $2 seconds to keep sent rows */
    {"nrpc_outbox_clean", "DELETE FROM nrpc_outbox WHERE service = $1 AND sent_at IS NOT NULL"
                          " AND sent_at < now() - make_interval(secs => $2::int)"},
    {NULL, NULL},
};

nrpc_pg_statement *
nrpc__pg_statements(const nrpc_pg_statement *user, int outbox)
{
    size_t n = 0, m = 0, i;
    nrpc_pg_statement *all;

    while (user && user[n].name)
        n++;
    while (outbox && outbox_statements[m].name)
        m++;
    all = calloc(n + m + 1, sizeof *all);
    if (all == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        all[i] = user[i];
    for (i = 0; i < m; i++)
        all[n + i] = outbox_statements[i];
    return all;
}

struct nrpc__outbox {
    nrpc_pg *pg; /* NULL once stopped */
    nrpc_service *svc;
    uv_timer_t *timer; /* heap: closed (and freed) at stop */
    int refs;
    int running, again, attempts;
    int claimed, emitting, failed;
    char **stored; /* ids JetStream acknowledged, not marked yet */
    size_t nstored;
    char claimer[64];
    char lease_s[16], keep_s[16];
    int64_t poll_ms;
    int64_t last_clean_ms;
};

typedef struct {
    nrpc__outbox *ob;
    char id[];
} row_emit;

static void pass_start(nrpc__outbox *ob);

static void
outbox_release(nrpc__outbox *ob)
{
    size_t i;

    if (--ob->refs > 0)
        return;
    for (i = 0; i < ob->nstored; i++)
        free(ob->stored[i]);
    free(ob->stored);
    free(ob);
}

static void
on_timer(uv_timer_t *t)
{
    pass_start(t->data);
}

/* The pass is over: plan the next one. */
static void
pass_end(nrpc__outbox *ob, const char *failure)
{
    int64_t delay;

    ob->running = 0;
    if (ob->pg == NULL)
        return;
    if (failure) {
        ob->attempts++;
        if (ob->attempts == 1 || ob->attempts % 20 == 0)
            nrpc_log(NRPC_LOG_WARN, "outbox: %s (attempt %d; retrying with backoff)", failure,
                     ob->attempts);
        delay = nrpc_backoff_ms(ob->attempts, RETRY_MIN_MS, RETRY_MAX_MS);
    } else {
        if (ob->attempts > 0)
            nrpc_log(NRPC_LOG_INFO, "outbox: relaying again");
        ob->attempts = 0;
        delay = ob->again || ob->claimed == BATCH ? 0 : ob->poll_ms;
    }
    ob->again = 0;
    uv_timer_start(ob->timer, on_timer, (uint64_t)delay, 0);
}

/* 0, or -1 after ending the pass, when the query did not succeed. */
static int
query_failed(nrpc__outbox *ob, int code, const PGresult *res, const char *error, const char *what)
{
    char m[512];

    if (code == 0 && (PQresultStatus(res) == PGRES_TUPLES_OK ||
                      PQresultStatus(res) == PGRES_COMMAND_OK))
        return 0;
    if (code == NRPC_CODE_CANCELED || ob->pg == NULL) {
        pass_end(ob, NULL);
        return -1;
    }
    snprintf(m, sizeof m, "%s: %s", what, code ? error : PQresultErrorMessage(res));
    nrpc__pg_one_line(m);
    pass_end(ob, m);
    return -1;
}

static void on_claimed(nrpc_call *call, int code, const PGresult *res, const char *error,
                       void *arg);
static void on_marked(nrpc_call *call, int code, const PGresult *res, const char *error,
                      void *arg);

/* A query of the relay's, holding a reference until cb has run. */
static void
run(nrpc__outbox *ob, const char *statement, int nparams, const char *const *params,
    nrpc_pg_cb cb)
{
    ob->refs++;
    if (nrpc__pg_run(ob->pg, QUERY_TIMEOUT_MS, statement, nparams, params, cb, ob) != NRPC_OK) {
        ob->refs--;
        pass_end(ob, "cannot query the database");
    }
}

static void
claim(nrpc__outbox *ob)
{
    char batch[16];
    const char *params[4] = {nrpc_service_def_of(ob->svc)->name, ob->claimer, ob->lease_s, batch};

    snprintf(batch, sizeof batch, "%d", BATCH);
    run(ob, "nrpc_outbox_claim", 4, params, on_claimed);
}

/* Marks the stored ids sent: at the end of a pass (running 2), or first
 * thing (leftovers of a mark that failed), followed by a claim. */
static void
mark(nrpc__outbox *ob)
{
    size_t i, len = 3;
    char *list, *p;

    for (i = 0; i < ob->nstored; i++)
        len += strlen(ob->stored[i]) + 1;
    list = malloc(len);
    if (list == NULL) {
        pass_end(ob, "out of memory");
        return;
    }
    p = list;
    *p++ = '{';
    for (i = 0; i < ob->nstored; i++)
        p += sprintf(p, "%s%s", i ? "," : "", ob->stored[i]);
    *p++ = '}';
    *p = '\0';
    {
        const char *params[1] = {list};
        run(ob, "nrpc_outbox_sent", 1, params, on_marked);
    }
    free(list);
}

static void
on_marked(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    nrpc__outbox *ob = arg;
    size_t i;

    if (query_failed(ob, code, res, error, "marking events sent") == 0) {
        for (i = 0; i < ob->nstored; i++)
            free(ob->stored[i]);
        ob->nstored = 0;
        if (ob->running == 2)
            pass_end(ob, ob->failed ? "some events were not stored by JetStream" : NULL);
        else
            claim(ob);
    }
    outbox_release(ob);
}

static void
emits_done(nrpc__outbox *ob)
{
    ob->running = 2; /* the closing mark */
    if (ob->nstored > 0)
        mark(ob);
    else
        pass_end(ob, ob->failed ? "some events were not stored by JetStream" : NULL);
}

static void
on_emitted(nrpc_service *svc, int code, const char *error, void *arg)
{
    row_emit *re = arg;
    nrpc__outbox *ob = re->ob;
    char **more;

    if (code == 0 && (more = realloc(ob->stored, (ob->nstored + 1) * sizeof *more)) != NULL) {
        ob->stored = more;
        ob->stored[ob->nstored++] = strdup(re->id);
        if (ob->stored[ob->nstored - 1] == NULL)
            ob->nstored--; /* not marked now: emitted again later, dropped as a duplicate */
    } else if (code != 0) {
        if (code != NRPC_CODE_CANCELED && !ob->failed)
            nrpc_log(NRPC_LOG_WARN, "outbox: event %s not stored: %s", re->id, error);
        ob->failed = 1;
    }
    free(re);
    ob->emitting--;
    if (ob->pg != NULL && ob->emitting == 0 && ob->running == 1)
        emits_done(ob);
    outbox_release(ob);
}

static void
on_claimed(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    nrpc__outbox *ob = arg;
    int i, n;

    if (query_failed(ob, code, res, error, "claiming events") != 0) {
        outbox_release(ob);
        return;
    }
    n = PQntuples(res);
    ob->claimed = n;
    ob->emitting = 1; /* this loop, so that no emit ends the pass under it */
    for (i = 0; i < n; i++) {
        const char *id = PQgetvalue(res, i, 0), *event = PQgetvalue(res, i, 1);
        row_emit *re = malloc(sizeof *re + strlen(id) + 1);
        nrpc_status st = NRPC_ERR_NOMEM;

        if (re) {
            re->ob = ob;
            strcpy(re->id, id);
            st = nrpc_service_emit_text(ob->svc, event, id, PQgetvalue(res, i, 2),
                                        (size_t)PQgetlength(res, i, 2), on_emitted, re);
        }
        if (st != NRPC_OK) {
            if (!ob->failed)
                nrpc_log(NRPC_LOG_WARN, "outbox: cannot emit %s (event %s): %s", id, event,
                         nrpc_status_text(st));
            ob->failed = 1;
            free(re);
            continue;
        }
        ob->emitting++;
        ob->refs++;
    }
    if (--ob->emitting == 0)
        emits_done(ob);
    outbox_release(ob);
}

static void
on_cleaned(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    /* Best effort: old sent rows only cost space. */
}

static void
pass_start(nrpc__outbox *ob)
{
    if (ob->pg == NULL)
        return;
    if (ob->running) {
        ob->again = 1;
        return;
    }
    if (!nrpc_pg_ready(ob->pg)) {
        uv_timer_start(ob->timer, on_timer, (uint64_t)ob->poll_ms, 0);
        return;
    }
    ob->running = 1;
    ob->claimed = 0;
    ob->failed = 0;
    if (nrpc_now_ms() - ob->last_clean_ms > 60000) {
        const char *params[2] = {nrpc_service_def_of(ob->svc)->name, ob->keep_s};
        ob->last_clean_ms = nrpc_now_ms();
        nrpc__pg_run(ob->pg, QUERY_TIMEOUT_MS, "nrpc_outbox_clean", 2, params, on_cleaned, NULL);
    }
    if (ob->nstored > 0)
        mark(ob); /* leftovers of a mark that failed, then a claim */
    else
        claim(ob);
}

nrpc__outbox *
nrpc__outbox_new(nrpc_pg *pg, nrpc_service *svc)
{
    nrpc__outbox *ob = calloc(1, sizeof *ob);

    if (ob == NULL || (ob->timer = malloc(sizeof *ob->timer)) == NULL) {
        free(ob);
        return NULL;
    }
    ob->pg = pg;
    ob->svc = svc;
    ob->refs = 1;
    ob->poll_ms = nrpc_env_int("NRPC_OUTBOX_POLL_MS", 1000, 10, 600000);
    snprintf(ob->lease_s, sizeof ob->lease_s, "%lld",
             nrpc_env_int("NRPC_OUTBOX_LEASE_S", 10, 1, 3600));
    snprintf(ob->keep_s, sizeof ob->keep_s, "%lld",
             nrpc_env_int("NRPC_OUTBOX_KEEP_S", 86400, 0, 100LL * 365 * 86400));
    /* Unique per process: a restarted relay waits out the old leases. */
    snprintf(ob->claimer, sizeof ob->claimer, "%s-", nrpc_service_def_of(svc)->name);
    nrpc_random_hex(ob->claimer + strlen(ob->claimer), 16);
    ob->last_clean_ms = nrpc_now_ms();
    uv_timer_init(nrpc_service_loop(svc), ob->timer);
    ob->timer->data = ob;
    return ob;
}

void
nrpc__outbox_kick(nrpc__outbox *ob)
{
    if (ob == NULL || ob->pg == NULL)
        return;
    if (ob->running)
        ob->again = 1;
    else
        uv_timer_start(ob->timer, on_timer, 0, 0);
}

static void
timer_closed(uv_handle_t *h)
{
    free(h);
}

void
nrpc__outbox_stop(nrpc__outbox *ob)
{
    if (ob == NULL)
        return;
    ob->pg = NULL;
    uv_close((uv_handle_t *)ob->timer, timer_closed);
    ob->timer = NULL;
    outbox_release(ob);
}
