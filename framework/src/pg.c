/* pg.c: a pool of non-blocking libpq connections on the service's loop
 * thread, reconnects, deadlines and fail-fast 503s. See natsrpc_pg.h for the
 * contract. Written against natsrpc.h alone, as any extension could be.
 *
 * Each connection is a small state machine driven by a uv_poll on its
 * socket: DOWN (waiting for its retry timer) -> CONNECTING (PQconnectPoll)
 * -> PREPARING (one PQsendPrepare per statement) -> IDLE <-> BUSY (one
 * query at a time). Calls that find no idle connection wait in one FIFO,
 * bounded, each until its deadline; when no connection is up at all they
 * end with 503 at once instead of waiting for a database that is not there.
 *
 * Every request holds a reference on its call and ends exactly once, in
 * request_finish. A query on the wire whose call's deadline passes is
 * canceled on the server (PQcancel, which blocks, on the pool's cancel
 * thread), and its connection takes no new query until both the cancel
 * and the query's end are in, so a late cancel never hits the next query. */
#include "pg_private.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define DEFAULT_POOL_SIZE 4
#define DEFAULT_MAX_WAITING 1000
#define CONNECT_TIMEOUT_MS 5000

typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_PREPARING, CONN_IDLE, CONN_BUSY } conn_state;

typedef struct pg_request {
    struct pg_request *next; /* the wait queue, or the finished list */
    nrpc_pg *pg;
    nrpc_call *call; /* held until the callback has run; NULL: the pool's own */
    const char *statement;          /* borrowed from the caller's static table */
    int nparams;
    char **params; /* copies */
    nrpc_pg_cb cb;
    void *arg;
    int64_t deadline_ms; /* monotonic; INT64_MAX when the caller set none */
    int code;            /* on the finished list: the code to call back with */
    int wakes_outbox;    /* the statement writes the outbox: wake the relay */
    char error[256];
} pg_request;

typedef struct pg_conn {
    nrpc_pg *pg;
    int index;
    conn_state state;
    PGconn *c;
    uv_poll_t *poll; /* heap: closed asynchronously when the socket changes */
    uv_timer_t timer; /* DOWN: retry; CONNECTING: connect timeout; BUSY: deadline */
    int attempts;
    int prepare_next;      /* PREPARING: statements prepared so far */
    pg_request *req;       /* BUSY: the query on the wire */
    PGresult *first;       /* BUSY: the first result, handed to the callback */
    int deadline_passed;   /* BUSY: canceled for its deadline: ends with 504 */
    int cancel_pending;    /* the cancel thread has not finished our cancel */
} pg_conn;

/* A cancel request for the cancel thread. */
typedef struct pg_cancel_job {
    struct pg_cancel_job *next;
    pg_conn *conn;
    PGcancel *cancel;
} pg_cancel_job;

struct nrpc_pg {
    nrpc_service *svc;
    uv_loop_t *loop;
    nrpc_pg_opts opts;
    nrpc_pg_statement *statements; /* opts.statements, then the outbox's */
    unsigned char *writes_outbox;  /* per statement: it inserts into the outbox */
    nrpc__outbox *outbox;          /* opts.outbox */
    char *conninfo;
    pg_conn *conns;
    int nconns;
    pg_request *wait_head, *wait_tail;
    int nwaiting;
    uv_timer_t sweep; /* the earliest deadline in the wait queue */
    pg_request *finished; /* ended before reaching a connection: called back next tick */
    uv_timer_t finish_timer;
    int migrated;
    int stopping;
    int was_up;  /* for "database is back" / "database lost" log lines */
    int closing; /* handles whose close callback has not run yet */

    /* migrations thread -> loop */
    pthread_t migrator;
    int migrator_started;
    atomic_int migrator_stop;
    uv_async_t migrated_async;

    /* cancel thread <-> loop, under cmu */
    pthread_t canceler;
    int canceler_started;
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    pg_cancel_job *cancel_todo, *cancel_done;
    int cancel_stop;
    uv_async_t cancel_async;
};

static void conn_connect(pg_conn *conn);
static void conn_fail(pg_conn *conn, const char *why);
static void pool_dispatch(nrpc_pg *pg);
static void conn_on_poll(uv_poll_t *h, int status, int events);

/* libpq prints server notices (and the FATAL of a shutdown) on stderr by
 * itself: route them through our log so every line has our format. */
void
nrpc__pg_notice(void *arg, const char *message)
{
    char line[512];
    (void)arg;
    snprintf(line, sizeof line, "%s", message);
    nrpc__pg_one_line(line);
    nrpc_log(NRPC_LOG_INFO, "database: %s", line);
}

/* libpq messages span lines ("...\n\tThis probably means..."): a log
 * line and an error message stay on one line. */
void
nrpc__pg_one_line(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        char c = (*r == '\n' || *r == '\t' || *r == '\r') ? ' ' : *r;
        if (c == ' ' && (w == s || w[-1] == ' '))
            continue;
        *w++ = c;
    }
    while (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
}

/* ---- requests ---------------------------------------------------------- */

static void
request_free(pg_request *r)
{
    int i;
    for (i = 0; i < r->nparams; i++)
        free(r->params[i]);
    free(r->params);
    free(r);
}

/* The one end of every request: its callback, then its reference and its
 * memory. A call answered meanwhile gets NRPC_CODE_CANCELED, whatever the
 * database said. */
static void
request_finish(pg_request *r, int code, const PGresult *res, const char *error)
{
    nrpc_call *call = r->call;

    if (call && nrpc_call_answered(call) && code != NRPC_CODE_CANCELED) {
        code = NRPC_CODE_CANCELED;
        res = NULL;
        error = "the call was answered before the database did";
    }
    if (code != 0)
        res = NULL;
    if (code == 0 && r->wakes_outbox && PQresultStatus(res) != PGRES_FATAL_ERROR)
        nrpc__outbox_kick(r->pg->outbox);
    r->cb(call, code, res, code != 0 ? (error ? error : "") : NULL, r->arg);
    nrpc_call_release(call);
    request_free(r);
}

static void
on_finish_timer(uv_timer_t *t)
{
    nrpc_pg *pg = t->data;
    pg_request *list = pg->finished, *prev = NULL, *next;

    /* The list is newest first: reverse it so callbacks run in order. */
    pg->finished = NULL;
    for (; list; list = next) {
        next = list->next;
        list->next = prev;
        prev = list;
    }
    for (list = prev; list; list = next) {
        next = list->next;
        request_finish(list, list->code, NULL, list->error);
    }
}

/* Ends r on the next loop turn, never inside nrpc_pg_query itself: a
 * callback never runs inside the function that started the work. */
static void
request_finish_later(nrpc_pg *pg, pg_request *r, int code, const char *error)
{
    r->code = code;
    snprintf(r->error, sizeof r->error, "%s", error);
    r->next = pg->finished;
    pg->finished = r;
    uv_timer_start(&pg->finish_timer, on_finish_timer, 0, 0);
}

static int
pool_up_count(nrpc_pg *pg)
{
    int i, n = 0;
    for (i = 0; i < pg->nconns; i++)
        if (pg->conns[i].state == CONN_IDLE || pg->conns[i].state == CONN_BUSY)
            n++;
    return n;
}

/* The oldest waiting request, taken off the queue; NULL when empty. */
static pg_request *
wait_pop(nrpc_pg *pg)
{
    pg_request *r = pg->wait_head;

    if (r) {
        pg->wait_head = r->next;
        if (pg->wait_head == NULL)
            pg->wait_tail = NULL;
        r->next = NULL;
        pg->nwaiting--;
    }
    return r;
}

static void
finish_all_waiting(nrpc_pg *pg, int code, const char *message)
{
    pg_request *r;
    while ((r = wait_pop(pg)) != NULL)
        request_finish(r, code, NULL, message);
}

static void on_sweep(uv_timer_t *t);

/* Arms the sweep for the earliest deadline in the wait queue. */
static void
sweep_arm(nrpc_pg *pg)
{
    int64_t first = INT64_MAX, now = nrpc_now_ms();
    pg_request *r;

    for (r = pg->wait_head; r; r = r->next)
        if (r->deadline_ms < first)
            first = r->deadline_ms;
    if (first == INT64_MAX)
        uv_timer_stop(&pg->sweep);
    else
        uv_timer_start(&pg->sweep, on_sweep, (uint64_t)(first > now ? first - now : 0), 0);
}

/* ---- polling ----------------------------------------------------------- */

static void
poll_free_cb(uv_handle_t *h)
{
    free(h);
}

static void
conn_poll_stop(pg_conn *conn)
{
    if (conn->poll) {
        uv_close((uv_handle_t *)conn->poll, poll_free_cb);
        conn->poll = NULL;
    }
}

/* Watches the connection's socket. While connecting, libpq closes and opens
 * sockets as it moves through hosts and addresses, and a new socket often
 * gets the old number: epoll forgot the closed one, so the watcher is made
 * anew at every step (fresh). */
static int
conn_poll(pg_conn *conn, int events, int fresh)
{
    int fd = PQsocket(conn->c);

    if (fd < 0)
        return -1;
    if (fresh)
        conn_poll_stop(conn);
    if (conn->poll == NULL) {
        conn->poll = malloc(sizeof *conn->poll);
        if (conn->poll == NULL || uv_poll_init(conn->pg->loop, conn->poll, fd) != 0) {
            free(conn->poll);
            conn->poll = NULL;
            return -1;
        }
        conn->poll->data = conn;
    }
    return uv_poll_start(conn->poll, events, conn_on_poll);
}

/* Sends what libpq buffered; keeps watching for writability until done. */
static int
conn_flush(pg_conn *conn)
{
    int r = PQflush(conn->c);
    if (r < 0)
        return -1;
    return conn_poll(conn, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, 0);
}

/* ---- cancels (own thread: PQcancel blocks) ----------------------------- */

static void *
canceler_main(void *arg)
{
    nrpc_pg *pg = arg;

    pthread_mutex_lock(&pg->cmu);
    for (;;) {
        pg_cancel_job *j;
        while (pg->cancel_todo == NULL && !pg->cancel_stop)
            pthread_cond_wait(&pg->ccv, &pg->cmu);
        if (pg->cancel_todo == NULL)
            break;
        j = pg->cancel_todo;
        pg->cancel_todo = j->next;
        if (!pg->cancel_stop) {
            char err[256];
            pthread_mutex_unlock(&pg->cmu);
            if (!PQcancel(j->cancel, err, sizeof err))
                nrpc_log(NRPC_LOG_WARN, "database: cancel of a query past its deadline failed: %s",
                         err);
            pthread_mutex_lock(&pg->cmu);
        }
        j->next = pg->cancel_done;
        pg->cancel_done = j;
        uv_async_send(&pg->cancel_async);
    }
    pthread_mutex_unlock(&pg->cmu);
    return NULL;
}

/* Loop: cancels sent. A connection whose query already ended goes back to
 * work now. */
static void
on_cancels_done(uv_async_t *a)
{
    nrpc_pg *pg = a->data;
    pg_cancel_job *j, *next;

    pthread_mutex_lock(&pg->cmu);
    j = pg->cancel_done;
    pg->cancel_done = NULL;
    pthread_mutex_unlock(&pg->cmu);
    for (; j; j = next) {
        pg_conn *conn = j->conn;
        next = j->next;
        PQfreeCancel(j->cancel);
        free(j);
        conn->cancel_pending = 0;
        if (conn->state == CONN_IDLE && !pg->stopping)
            pool_dispatch(pg);
    }
}

static void
conn_cancel(pg_conn *conn)
{
    nrpc_pg *pg = conn->pg;
    pg_cancel_job *j = calloc(1, sizeof *j);

    if (j == NULL || (j->cancel = PQgetCancel(conn->c)) == NULL) {
        free(j);
        conn_fail(conn, "cannot cancel a query past its deadline");
        return;
    }
    if (!pg->canceler_started) {
        if (pthread_create(&pg->canceler, NULL, canceler_main, pg) != 0) {
            PQfreeCancel(j->cancel);
            free(j);
            conn_fail(conn, "cannot start the cancel thread");
            return;
        }
        pg->canceler_started = 1;
    }
    j->conn = conn;
    conn->cancel_pending = 1;
    pthread_mutex_lock(&pg->cmu);
    j->next = pg->cancel_todo;
    pg->cancel_todo = j;
    pthread_cond_signal(&pg->ccv);
    pthread_mutex_unlock(&pg->cmu);
}

/* ---- connecting -------------------------------------------------------- */

static void
on_conn_timer(uv_timer_t *t)
{
    pg_conn *conn = t->data;

    switch (conn->state) {
    case CONN_DOWN:
        conn_connect(conn);
        return;
    case CONN_CONNECTING:
        conn_fail(conn, "connection attempt timed out");
        return;
    case CONN_BUSY:
        /* The call's deadline passed with its query on the wire. */
        if (!conn->deadline_passed) {
            conn->deadline_passed = 1;
            conn_cancel(conn);
        }
        return;
    default:
        return;
    }
}

static void
conn_schedule_retry(pg_conn *conn)
{
    int64_t d = nrpc_backoff_ms(conn->attempts, NRPC_PG_BACKOFF_MIN_MS, NRPC_PG_BACKOFF_MAX_MS);
    uv_timer_start(&conn->timer, on_conn_timer, (uint64_t)d, 0);
}

static void
conn_fail(pg_conn *conn, const char *why)
{
    nrpc_pg *pg = conn->pg;
    pg_request *req = conn->req;
    char msg[512];
    int was_up = conn->state == CONN_IDLE || conn->state == CONN_BUSY;

    snprintf(msg, sizeof msg, "database unavailable: %s", why);
    nrpc__pg_one_line(msg);
    /* First the connection's own state, then callbacks: a callback may
     * start a query and must see the pool as it now is. */
    conn->req = NULL;
    PQclear(conn->first);
    conn->first = NULL;
    conn->deadline_passed = 0;
    conn_poll_stop(conn);
    if (conn->c) {
        PQfinish(conn->c);
        conn->c = NULL;
    }
    conn->state = CONN_DOWN;
    conn->attempts++;
    uv_timer_stop(&conn->timer);
    if (was_up || conn->attempts == 1 || conn->attempts % 20 == 0)
        nrpc_log(NRPC_LOG_WARN, "db connection %d: %s (attempt %d; retrying with backoff)",
                 conn->index, msg + strlen("database unavailable: "), conn->attempts);
    if (!pg->stopping)
        conn_schedule_retry(conn);
    if (req)
        request_finish(req, NRPC_CODE_UNAVAILABLE, NULL, msg);
    if (pool_up_count(pg) == 0) {
        if (pg->was_up) {
            nrpc_log(NRPC_LOG_WARN, "database lost: calls get 503 until it is back");
            pg->was_up = 0;
        }
        finish_all_waiting(pg, NRPC_CODE_UNAVAILABLE, msg);
    }
}

static void
conn_start_prepare(pg_conn *conn)
{
    const nrpc_pg_statement *st = conn->pg->statements;

    if (st == NULL || st[conn->prepare_next].name == NULL) {
        conn->state = CONN_IDLE;
        conn->attempts = 0;
        uv_timer_stop(&conn->timer);
        if (conn_poll(conn, UV_READABLE, 0) != 0) {
            conn_fail(conn, "cannot watch the socket");
            return;
        }
        if (!conn->pg->was_up) {
            char host[300];
            snprintf(host, sizeof host, "%s:%s", PQhost(conn->c), PQport(conn->c));
            nrpc_log(NRPC_LOG_INFO, "database connected: calls are served (%s)", host);
            conn->pg->was_up = 1;
        }
        pool_dispatch(conn->pg);
        return;
    }
    conn->state = CONN_PREPARING;
    if (!PQsendPrepare(conn->c, st[conn->prepare_next].name, st[conn->prepare_next].sql, 0,
                       NULL) ||
        conn_flush(conn) != 0)
        conn_fail(conn, PQerrorMessage(conn->c));
}

static void
conn_connect_step(pg_conn *conn)
{
    switch (PQconnectPoll(conn->c)) {
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(conn->c, 1) != 0) {
            conn_fail(conn, PQerrorMessage(conn->c));
            return;
        }
        conn_poll_stop(conn); /* the socket may be another than the last step's */
        conn->prepare_next = 0;
        conn_start_prepare(conn);
        return;
    case PGRES_POLLING_FAILED:
        conn_fail(conn, PQerrorMessage(conn->c));
        return;
    case PGRES_POLLING_READING:
        if (conn_poll(conn, UV_READABLE, 1) != 0)
            conn_fail(conn, "cannot watch the socket");
        return;
    default: /* WRITING (ACTIVE is unused) */
        if (conn_poll(conn, UV_WRITABLE, 1) != 0)
            conn_fail(conn, "cannot watch the socket");
        return;
    }
}

static void
conn_connect(pg_conn *conn)
{
    /* keepalives and tcp_user_timeout let a dead server be noticed without
     * traffic; expand_dbname lets conninfo be a URI or key=value text, with
     * every libpq setting it carries (several hosts, target_session_attrs). */
    const char *keys[] = {"dbname", "application_name", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout", NULL};
    const char *vals[] = {conn->pg->conninfo, nrpc_service_def_of(conn->pg->svc)->name, "1", "5",
                          "2", "3", "10000", NULL};

    conn->c = PQconnectStartParams(keys, vals, 1);
    conn->state = CONN_CONNECTING;
    if (conn->c)
        PQsetNoticeProcessor(conn->c, nrpc__pg_notice, NULL);
    if (conn->c == NULL || PQstatus(conn->c) == CONNECTION_BAD) {
        conn_fail(conn, conn->c ? PQerrorMessage(conn->c) : "out of memory");
        return;
    }
    /* The polling API ignores connect_timeout: our own timer bounds it. */
    uv_timer_start(&conn->timer, on_conn_timer, CONNECT_TIMEOUT_MS, 0);
    if (conn_poll(conn, UV_WRITABLE, 1) != 0)
        conn_fail(conn, "cannot watch the socket");
}

/* ---- queries ----------------------------------------------------------- */

static void
conn_send(pg_conn *conn, pg_request *r)
{
    int64_t left = r->deadline_ms == INT64_MAX ? INT64_MAX : r->deadline_ms - nrpc_now_ms();

    conn->state = CONN_BUSY;
    conn->req = r;
    conn->first = NULL;
    conn->deadline_passed = 0;
    if (left != INT64_MAX)
        uv_timer_start(&conn->timer, on_conn_timer, (uint64_t)(left > 0 ? left : 0), 0);
    if (!PQsendQueryPrepared(conn->c, r->statement, r->nparams, (const char *const *)r->params,
                             NULL, NULL, 0) ||
        conn_flush(conn) != 0)
        conn_fail(conn, PQerrorMessage(conn->c));
}

static void
pool_dispatch(nrpc_pg *pg)
{
    int i;
    for (i = 0; i < pg->nconns && pg->wait_head; i++) {
        pg_conn *conn = &pg->conns[i];
        if (conn->state == CONN_IDLE && !conn->cancel_pending)
            conn_send(conn, wait_pop(pg));
    }
}

/* Reads results until libpq says the command is complete (NULL), then hands
 * the first result to the callback. */
static void
conn_read_results(pg_conn *conn)
{
    for (;;) {
        PGresult *res;
        if (PQisBusy(conn->c))
            return; /* more to read */
        res = PQgetResult(conn->c);
        if (res == NULL)
            break;
        if (conn->first == NULL)
            conn->first = res;
        else
            PQclear(res);
    }
    if (conn->state == CONN_PREPARING) {
        int ok = conn->first && PQresultStatus(conn->first) == PGRES_COMMAND_OK;
        char why[512];
        if (!ok)
            snprintf(why, sizeof why, "preparing %s: %s",
                     conn->pg->statements[conn->prepare_next].name,
                     conn->first ? PQresultErrorMessage(conn->first) : "no result");
        PQclear(conn->first);
        conn->first = NULL;
        if (!ok) {
            nrpc_log(NRPC_LOG_ERROR, "%s", why);
            conn_fail(conn, why);
            return;
        }
        conn->prepare_next++;
        conn_start_prepare(conn);
        return;
    }
    {
        pg_request *r = conn->req;
        PGresult *res = conn->first;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        int deadline_passed = conn->deadline_passed;

        conn->req = NULL;
        conn->first = NULL;
        conn->deadline_passed = 0;
        conn->state = CONN_IDLE;
        uv_timer_stop(&conn->timer);
        if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)) {
            /* The server is going away (shutdown, admin command): a 503,
             * and this connection is finished. */
            char why[512];
            snprintf(why, sizeof why, "server closed the session: %s", PQresultErrorMessage(res));
            PQclear(res);
            conn->req = r; /* conn_fail ends it with 503 */
            conn->state = CONN_BUSY;
            conn_fail(conn, why);
            return;
        }
        if (deadline_passed)
            request_finish(r, NRPC_CODE_TIMEOUT, NULL,
                           "the call's deadline passed during its database query, which was "
                           "canceled");
        else if (res == NULL)
            request_finish(r, NRPC_CODE_INTERNAL, NULL, "the database sent no result");
        else
            request_finish(r, 0, res, NULL);
        PQclear(res);
        pool_dispatch(conn->pg);
    }
}

static void
conn_on_poll(uv_poll_t *h, int status, int events)
{
    pg_conn *conn = h->data;

    if (status < 0) {
        /* libuv only says the socket failed; libpq knows why. */
        if (conn->state == CONN_CONNECTING) {
            conn_connect_step(conn); /* libpq moves on to the next host */
            return;
        }
        if (conn->c && !PQconsumeInput(conn->c))
            conn_fail(conn, PQerrorMessage(conn->c));
        else
            conn_fail(conn, "connection error");
        return;
    }
    switch (conn->state) {
    case CONN_CONNECTING:
        conn_connect_step(conn);
        return;
    case CONN_PREPARING:
    case CONN_BUSY:
        if (events & UV_WRITABLE) {
            if (conn_flush(conn) != 0) {
                conn_fail(conn, PQerrorMessage(conn->c));
                return;
            }
        }
        if (events & UV_READABLE) {
            if (!PQconsumeInput(conn->c)) {
                conn_fail(conn, PQerrorMessage(conn->c));
                return;
            }
            conn_read_results(conn);
        }
        return;
    case CONN_IDLE:
        /* Nothing is expected: this is the server closing the session. */
        if (!PQconsumeInput(conn->c) || PQstatus(conn->c) == CONNECTION_BAD) {
            conn_fail(conn, PQerrorMessage(conn->c));
            return;
        }
        {
            PGnotify *n;
            while ((n = PQnotifies(conn->c)) != NULL)
                PQfreemem(n);
        }
        return;
    case CONN_DOWN:
        return;
    }
}

/* ---- the wait queue's deadlines ---------------------------------------- */

static void
on_sweep(uv_timer_t *t)
{
    nrpc_pg *pg = t->data;
    int64_t now = nrpc_now_ms();
    pg_request *r = pg->wait_head, *next, *expired = NULL;

    /* Unlink first, call back after: a callback may start a query, and a
     * failing one may empty the queue under this walk. The queue is rebuilt
     * in order from the requests that still have time. */
    pg->wait_head = pg->wait_tail = NULL;
    for (; r; r = next) {
        next = r->next;
        r->next = NULL;
        if (r->deadline_ms <= now) {
            pg->nwaiting--;
            r->next = expired;
            expired = r;
        } else if (pg->wait_tail) {
            pg->wait_tail->next = r;
            pg->wait_tail = r;
        } else {
            pg->wait_head = pg->wait_tail = r;
        }
    }
    for (r = expired; r; r = next) {
        next = r->next;
        request_finish(r, NRPC_CODE_TIMEOUT, NULL,
                       "the call's deadline passed while it waited for a database connection");
    }
    sweep_arm(pg);
}

/* Queues statement for call (NULL: the pool's own work, such as the
 * outbox relay) with the deadline deadline_ms (monotonic, INT64_MAX for
 * none). */
static nrpc_status
pg_submit(nrpc_pg *pg, nrpc_call *call, int64_t deadline_ms, const char *statement, int nparams,
          const char *const *params, nrpc_pg_cb cb, void *arg)
{
    pg_request *r;
    int64_t left;
    int i;

    if (pg == NULL || statement == NULL || cb == NULL || nparams < 0 ||
        (nparams > 0 && params == NULL))
        return NRPC_ERR_INVALID_ARG;
    if (pg->stopping || (call && nrpc_call_answered(call)))
        return NRPC_ERR_STATE;
    r = calloc(1, sizeof *r);
    if (r == NULL || (nparams > 0 && (r->params = calloc((size_t)nparams, sizeof(char *))) == NULL)) {
        free(r);
        return NRPC_ERR_NOMEM;
    }
    r->nparams = nparams;
    for (i = 0; i < nparams; i++)
        if (params[i] && (r->params[i] = strdup(params[i])) == NULL) {
            request_free(r);
            return NRPC_ERR_NOMEM;
        }
    for (i = 0; pg->outbox && pg->statements[i].name; i++)
        if (strcmp(pg->statements[i].name, statement) == 0)
            r->wakes_outbox = pg->writes_outbox[i];
    r->pg = pg;
    r->call = nrpc_call_hold(call);
    r->statement = statement;
    r->cb = cb;
    r->arg = arg;
    r->deadline_ms = deadline_ms;
    left = deadline_ms == INT64_MAX ? INT64_MAX : deadline_ms - nrpc_now_ms();
    if (call)
        nrpc_call_defer(call);

    if (!pg->migrated) {
        request_finish_later(pg, r, NRPC_CODE_UNAVAILABLE,
                             "database not ready: migrations not applied yet");
        return NRPC_OK;
    }
    if (pool_up_count(pg) == 0) {
        request_finish_later(pg, r, NRPC_CODE_UNAVAILABLE, "database unavailable");
        return NRPC_OK;
    }
    if (left <= 0) {
        request_finish_later(pg, r, NRPC_CODE_TIMEOUT,
                             "the call's deadline passed before its database query");
        return NRPC_OK;
    }
    for (i = 0; i < pg->nconns; i++)
        if (pg->conns[i].state == CONN_IDLE && !pg->conns[i].cancel_pending &&
            pg->wait_head == NULL) {
            conn_send(&pg->conns[i], r);
            return NRPC_OK;
        }
    if (pg->nwaiting >= pg->opts.max_waiting) {
        char m[128];
        snprintf(m, sizeof m, "database pool busy: %d calls waiting for a connection",
                 pg->nwaiting);
        request_finish_later(pg, r, NRPC_CODE_UNAVAILABLE, m);
        return NRPC_OK;
    }
    if (pg->wait_tail)
        pg->wait_tail->next = r;
    else
        pg->wait_head = r;
    pg->wait_tail = r;
    pg->nwaiting++;
    if (r->deadline_ms != INT64_MAX &&
        (!uv_is_active((uv_handle_t *)&pg->sweep) ||
         (int64_t)uv_timer_get_due_in(&pg->sweep) > left))
        uv_timer_start(&pg->sweep, on_sweep, (uint64_t)left, 0);
    return NRPC_OK;
}

nrpc_status
nrpc_pg_query(nrpc_pg *pg, nrpc_call *call, const char *statement, int nparams,
              const char *const *params, nrpc_pg_cb cb, void *arg)
{
    int64_t left;

    if (call == NULL)
        return NRPC_ERR_INVALID_ARG;
    left = nrpc_call_time_left_ms(call);
    return pg_submit(pg, call, left == INT64_MAX ? INT64_MAX : nrpc_now_ms() + left, statement,
                     nparams, params, cb, arg);
}

nrpc_status
nrpc__pg_run(nrpc_pg *pg, int64_t timeout_ms, const char *statement, int nparams,
             const char *const *params, nrpc_pg_cb cb, void *arg)
{
    return pg_submit(pg, NULL, nrpc_now_ms() + timeout_ms, statement, nparams, params, cb, arg);
}

int
nrpc_pg_failed(nrpc_call *call, int code, const PGresult *res, const char *error)
{
    const char *state, *msg;
    ExecStatusType st;

    if (code != 0) {
        nrpc_fail(call, code,
                  code == NRPC_CODE_UNAVAILABLE && error && strstr(error, "pool busy")
                      ? "overloaded"
                      : NULL,
                  "%s", error ? error : "database error");
        return 1;
    }
    st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return 0;
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (msg == NULL)
        msg = PQresultErrorMessage(res);
    if (state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0))
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL, "%s", msg);
    else if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, "unavailable", "database unavailable: %s", msg);
    else
        nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "database error %s: %s", state ? state : "?",
                  msg);
    return 1;
}

int
nrpc_pg_ready(nrpc_pg *pg)
{
    return pg && pg->migrated && pool_up_count(pg) > 0;
}

/* ---- life -------------------------------------------------------------- */

static void *
migrator_main(void *arg)
{
    nrpc_pg *pg = arg;

    if (nrpc__pg_migrate_until_done(pg->conninfo, pg->opts.migrations_dir, &pg->migrator_stop) ==
        0)
        uv_async_send(&pg->migrated_async);
    return NULL;
}

static void
on_migrated(uv_async_t *a)
{
    nrpc_pg *pg = a->data;
    int i;

    if (pg->stopping || pg->migrated)
        return;
    pg->migrated = 1;
    for (i = 0; i < pg->nconns; i++)
        conn_connect(&pg->conns[i]);
    nrpc__outbox_kick(pg->outbox);
}

nrpc_status
nrpc_pg_start(nrpc_pg **out, nrpc_service *svc, const nrpc_pg_opts *opts)
{
    nrpc_pg *pg;
    const char *ci;
    int i;

    *out = NULL;
    if (svc == NULL || nrpc_service_loop(svc) == NULL)
        return NRPC_ERR_INVALID_ARG;
    pg = calloc(1, sizeof *pg);
    if (pg == NULL)
        return NRPC_ERR_NOMEM;
    if (opts)
        pg->opts = *opts;
    ci = pg->opts.conninfo ? pg->opts.conninfo : getenv("DATABASE_URL");
    pg->conninfo = strdup(ci && *ci ? ci : "dbname=natsrpc");
    if (pg->opts.pool_size <= 0)
        pg->opts.pool_size = (int)nrpc_env_int("DB_POOL_SIZE", DEFAULT_POOL_SIZE, 1, 256);
    if (pg->opts.max_waiting <= 0)
        pg->opts.max_waiting = DEFAULT_MAX_WAITING;
    pg->svc = svc;
    pg->loop = nrpc_service_loop(svc);
    pg->nconns = pg->opts.pool_size;
    pg->conns = calloc((size_t)pg->nconns, sizeof *pg->conns);
    pg->statements = nrpc__pg_statements(pg->opts.statements, pg->opts.outbox);
    for (i = 0; pg->statements && pg->statements[i].name; i++)
        ;
    pg->writes_outbox = calloc((size_t)i + 1, 1);
    if (pg->conninfo == NULL || pg->conns == NULL || pg->statements == NULL ||
        pg->writes_outbox == NULL) {
        free(pg->conninfo);
        free(pg->conns);
        free(pg->statements);
        free(pg->writes_outbox);
        free(pg);
        return NRPC_ERR_NOMEM;
    }
    /* Read once here, not on every query: which statements wake the relay. */
    for (i = 0; pg->statements[i].name; i++)
        pg->writes_outbox[i] = strstr(pg->statements[i].sql, "INSERT INTO nrpc_outbox") != NULL;
    pthread_mutex_init(&pg->cmu, NULL);
    pthread_cond_init(&pg->ccv, NULL);
    if (pg->opts.outbox)
        pg->outbox = nrpc__outbox_new(pg, svc);
    for (i = 0; i < pg->nconns; i++) {
        pg_conn *conn = &pg->conns[i];
        conn->pg = pg;
        conn->index = i;
        conn->state = CONN_DOWN;
        uv_timer_init(pg->loop, &conn->timer);
        conn->timer.data = conn;
    }
    uv_timer_init(pg->loop, &pg->sweep);
    pg->sweep.data = pg;
    uv_timer_init(pg->loop, &pg->finish_timer);
    pg->finish_timer.data = pg;
    uv_async_init(pg->loop, &pg->migrated_async, on_migrated);
    pg->migrated_async.data = pg;
    uv_async_init(pg->loop, &pg->cancel_async, on_cancels_done);
    pg->cancel_async.data = pg;
    if (pthread_create(&pg->migrator, NULL, migrator_main, pg) != 0) {
        nrpc_pg_stop(pg);
        return NRPC_ERR_SYSTEM;
    }
    pg->migrator_started = 1;
    nrpc_log(NRPC_LOG_INFO, "database pool of %d connections starting", pg->nconns);
    *out = pg;
    return NRPC_OK;
}

/* The pool is freed when the last of its handles has been closed by the
 * loop: libuv may run close callbacks in any order. Every handle's data is
 * the pool by then. */
static void
pg_handle_closed(uv_handle_t *h)
{
    nrpc_pg *pg = h->data;

    if (--pg->closing > 0)
        return;
    pthread_mutex_destroy(&pg->cmu);
    pthread_cond_destroy(&pg->ccv);
    free(pg->conns);
    free(pg->conninfo);
    free(pg->statements);
    free(pg->writes_outbox);
    free(pg);
}

static void
pg_close(nrpc_pg *pg, uv_handle_t *h)
{
    h->data = pg;
    pg->closing++;
    uv_close(h, pg_handle_closed);
}

static void
cancel_jobs_free(pg_cancel_job *j)
{
    while (j) {
        pg_cancel_job *next = j->next;
        PQfreeCancel(j->cancel);
        free(j);
        j = next;
    }
}

void
nrpc_pg_stop(nrpc_pg *pg)
{
    pg_request *r, *next;
    int i;

    if (pg == NULL)
        return;
    pg->stopping = 1;
    nrpc__outbox_stop(pg->outbox); /* its queries end canceled below */
    pg->outbox = NULL;
    if (pg->migrator_started) {
        atomic_store(&pg->migrator_stop, 1);
        pthread_join(pg->migrator, NULL);
    }
    if (pg->canceler_started) {
        pthread_mutex_lock(&pg->cmu);
        pg->cancel_stop = 1;
        pthread_cond_signal(&pg->ccv);
        pthread_mutex_unlock(&pg->cmu);
        pthread_join(pg->canceler, NULL);
    }
    cancel_jobs_free(pg->cancel_todo);
    cancel_jobs_free(pg->cancel_done);
    pg->cancel_todo = pg->cancel_done = NULL;

    /* Every request still owed a callback gets it now, canceled. */
    r = pg->finished;
    pg->finished = NULL;
    for (; r; r = next) {
        next = r->next;
        request_finish(r, NRPC_CODE_CANCELED, NULL, "the service is stopping");
    }
    finish_all_waiting(pg, NRPC_CODE_CANCELED, "the service is stopping");
    for (i = 0; i < pg->nconns; i++) {
        pg_conn *conn = &pg->conns[i];
        pg_request *req = conn->req;

        conn->req = NULL;
        PQclear(conn->first);
        conn->first = NULL;
        conn_poll_stop(conn);
        if (conn->c)
            PQfinish(conn->c);
        conn->c = NULL;
        conn->state = CONN_DOWN;
        if (req)
            request_finish(req, NRPC_CODE_CANCELED, NULL, "the service is stopping");
        pg_close(pg, (uv_handle_t *)&conn->timer);
    }
    pg_close(pg, (uv_handle_t *)&pg->sweep);
    pg_close(pg, (uv_handle_t *)&pg->finish_timer);
    pg_close(pg, (uv_handle_t *)&pg->migrated_async);
    pg_close(pg, (uv_handle_t *)&pg->cancel_async);
}
