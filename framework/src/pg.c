/* pg.c: a pool of non-blocking libpq connections on the service's loop
 * thread, migrations at start-up, reconnects, fail-fast 503s. See
 * natsrpc_pg.h for the contract.
 *
 * Each connection is a small state machine driven by a uv_poll on its
 * socket: DOWN (waiting for its retry timer) -> CONNECTING (PQconnectPoll)
 * -> PREPARING (one PQsendPrepare per statement) -> IDLE <-> BUSY (one
 * query at a time). Calls that find no idle connection wait in one FIFO,
 * bounded; when no connection is up at all they are answered 503 at once
 * instead of waiting for a database that is not there. */
#include "runtime.h"
#include "natsrpc_pg.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_POOL_SIZE 4
#define DEFAULT_MAX_WAITING 1000
#define CONNECT_TIMEOUT_MS 5000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define MIGRATION_LOCK_KEY 7429001 /* pg_advisory_xact_lock key: natsrpc migrations */

typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_PREPARING, CONN_IDLE, CONN_BUSY } conn_state;

typedef struct pg_request {
    struct pg_request *next;
    nrpc_call *call;
    const char *statement; /* borrowed from the caller's static table */
    int nparams;
    char **params; /* copies */
    nrpc_pg_cb cb;
    void *arg;
} pg_request;

typedef struct pg_conn {
    nrpc_pg *pg;
    int index;
    conn_state state;
    PGconn *c;
    uv_poll_t *poll; /* heap: closed asynchronously when the socket changes */
    int poll_fd;
    uv_timer_t timer; /* retry backoff and connect timeout */
    int attempts;
    int prepare_next;      /* PREPARING: statements prepared so far */
    pg_request *req;       /* BUSY: the query on the wire */
    PGresult *first;       /* BUSY: the first result, handed to the callback */
    int result_error_seen; /* a result with an error came before NULL */
} pg_conn;

struct nrpc_pg {
    nrpc_service *svc;
    uv_loop_t *loop;
    nrpc_pg_opts opts;
    char *conninfo;
    pg_conn *conns;
    int nconns;
    pg_request *wait_head, *wait_tail;
    int nwaiting;
    int migrated;
    int stopping;
    int was_up; /* for "database is back" / "database lost" log lines */
    int closing; /* handles whose close callback has not run yet */

    /* migrations thread -> loop */
    pthread_t migrator;
    int migrator_started;
    atomic_int migrator_stop;
    uv_async_t migrated_async;
};

static void conn_connect(pg_conn *conn);
static void one_line(char *s);

/* libpq prints server notices (and the FATAL of a shutdown) on stderr by
 * itself: route them through our log so every line has our format. */
static void
pg_notice(void *arg, const char *message)
{
    char line[512];
    snprintf(line, sizeof line, "%s", message);
    one_line(line);
    nrpc_log(NRPC_LOG_INFO, "database: %s", line);
}
static void conn_fail(pg_conn *conn, const char *why);
static void pool_dispatch(nrpc_pg *pg);
static void conn_on_poll(uv_poll_t *h, int status, int events);

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

/* Answers a request that cannot be run: the callback never runs. */
static void
request_refuse(pg_request *r, const char *type, const char *message)
{
    nrpc_fail(r->call, NRPC_CODE_UNAVAILABLE, type, "%s", message);
    request_free(r);
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

static void
refuse_all_waiting(nrpc_pg *pg, const char *message)
{
    pg_request *r = pg->wait_head, *next;
    pg->wait_head = pg->wait_tail = NULL;
    pg->nwaiting = 0;
    for (; r; r = next) {
        next = r->next;
        request_refuse(r, "unavailable", message);
    }
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
        conn->poll_fd = -1;
    }
}

/* Watches the connection's socket for events, re-creating the watcher when
 * libpq moved to another socket (next host, SSL fallback...). */
static int
conn_poll(pg_conn *conn, int events)
{
    int fd = PQsocket(conn->c);

    if (fd < 0)
        return -1;
    if (conn->poll && conn->poll_fd != fd)
        conn_poll_stop(conn);
    if (conn->poll == NULL) {
        conn->poll = malloc(sizeof *conn->poll);
        if (conn->poll == NULL || uv_poll_init(conn->pg->loop, conn->poll, fd) != 0) {
            free(conn->poll);
            conn->poll = NULL;
            return -1;
        }
        conn->poll->data = conn;
        conn->poll_fd = fd;
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
    return conn_poll(conn, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* ---- connecting -------------------------------------------------------- */

static void
on_retry_timer(uv_timer_t *t)
{
    pg_conn *conn = t->data;
    if (conn->state == CONN_DOWN)
        conn_connect(conn);
    else if (conn->state == CONN_CONNECTING)
        conn_fail(conn, "connection attempt timed out");
}

static void
conn_schedule_retry(pg_conn *conn)
{
    int64_t d = BACKOFF_MIN_MS;
    int i;
    for (i = 1; i < conn->attempts && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    uv_timer_start(&conn->timer, on_retry_timer, (uint64_t)(d + rand() % 50), 0);
}

/* libpq messages span lines ("...\n\tThis probably means..."): a log
 * line and an error message stay on one line. */
static void
one_line(char *s)
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

static void
conn_fail(pg_conn *conn, const char *why)
{
    nrpc_pg *pg = conn->pg;
    char msg[512];
    int was_up = conn->state == CONN_IDLE || conn->state == CONN_BUSY;

    snprintf(msg, sizeof msg, "database unavailable: %s", why);
    one_line(msg);
    if (conn->req) {
        PQclear(conn->first);
        conn->first = NULL;
        request_refuse(conn->req, "unavailable", msg);
        conn->req = NULL;
    }
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
    if (pool_up_count(pg) == 0) {
        if (pg->was_up) {
            nrpc_log(NRPC_LOG_WARN, "database lost: calls get 503 until it is back");
            pg->was_up = 0;
        }
        refuse_all_waiting(pg, msg);
    }
    if (!pg->stopping)
        conn_schedule_retry(conn);
}

static void
conn_start_prepare(pg_conn *conn)
{
    const nrpc_pg_statement *st = conn->pg->opts.statements;

    if (st == NULL || st[conn->prepare_next].name == NULL) {
        conn->state = CONN_IDLE;
        conn->attempts = 0;
        uv_timer_stop(&conn->timer);
        if (conn_poll(conn, UV_READABLE) != 0) {
            conn_fail(conn, "cannot watch the socket");
            return;
        }
        if (!conn->pg->was_up) {
            nrpc_log(NRPC_LOG_INFO, "database connected: calls are served");
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
        conn->prepare_next = 0;
        conn_start_prepare(conn);
        return;
    case PGRES_POLLING_FAILED:
        conn_fail(conn, PQerrorMessage(conn->c));
        return;
    case PGRES_POLLING_READING:
        if (conn_poll(conn, UV_READABLE) != 0)
            conn_fail(conn, "cannot watch the socket");
        return;
    default: /* WRITING (ACTIVE is unused) */
        if (conn_poll(conn, UV_WRITABLE) != 0)
            conn_fail(conn, "cannot watch the socket");
        return;
    }
}

static void
conn_connect(pg_conn *conn)
{
    /* keepalives and tcp_user_timeout let a dead server be noticed without
     * traffic; expand_dbname lets conninfo be a URI or key=value text. */
    const char *keys[] = {"dbname", "application_name", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout", NULL};
    const char *vals[] = {conn->pg->conninfo, nrpc_service_def_of(conn->pg->svc)->name, "1", "5",
                          "2", "3", "10000", NULL};

    conn->c = PQconnectStartParams(keys, vals, 1);
    conn->state = CONN_CONNECTING;
    if (conn->c)
        PQsetNoticeProcessor(conn->c, pg_notice, NULL);
    if (conn->c == NULL || PQstatus(conn->c) == CONNECTION_BAD) {
        conn_fail(conn, conn->c ? PQerrorMessage(conn->c) : "out of memory");
        return;
    }
    /* The polling API ignores connect_timeout: our own timer bounds it. */
    uv_timer_start(&conn->timer, on_retry_timer, CONNECT_TIMEOUT_MS, 0);
    if (conn_poll(conn, UV_WRITABLE) != 0)
        conn_fail(conn, "cannot watch the socket");
}

/* ---- queries ----------------------------------------------------------- */

static void
conn_send(pg_conn *conn, pg_request *r)
{
    conn->state = CONN_BUSY;
    conn->req = r;
    conn->first = NULL;
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
        if (conn->state == CONN_IDLE) {
            pg_request *r = pg->wait_head;
            pg->wait_head = r->next;
            if (pg->wait_head == NULL)
                pg->wait_tail = NULL;
            pg->nwaiting--;
            r->next = NULL;
            conn_send(conn, r);
        }
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
                     conn->pg->opts.statements[conn->prepare_next].name,
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

        conn->req = NULL;
        conn->first = NULL;
        conn->state = CONN_IDLE;
        if (res == NULL) {
            nrpc_fail(r->call, NRPC_CODE_INTERNAL, NULL, "the database sent no result");
        } else if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)) {
            /* The server is going away (shutdown, admin command): a 503,
             * and this connection is finished. */
            nrpc_fail(r->call, NRPC_CODE_UNAVAILABLE, "unavailable", "database unavailable: %s",
                      PQresultErrorMessage(res));
            PQclear(res);
            request_free(r);
            conn_fail(conn, "server closed the session");
            return;
        } else {
            r->cb(r->call, res, r->arg);
        }
        PQclear(res);
        request_free(r);
        pool_dispatch(conn->pg);
    }
}

static void
conn_on_poll(uv_poll_t *h, int status, int events)
{
    pg_conn *conn = h->data;

    if (status < 0) {
        /* libuv only says the socket failed; libpq knows why. */
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

nrpc_status
nrpc_pg_query(nrpc_pg *pg, nrpc_call *call, const char *statement, int nparams,
              const char *const *params, nrpc_pg_cb cb, void *arg)
{
    pg_request *r;
    int i;

    if (pg == NULL || call == NULL || statement == NULL || cb == NULL || nparams < 0)
        return NRPC_ERR_INVALID_ARG;
    nrpc_call_defer(call);
    if (!pg->migrated) {
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, "unavailable",
                  "database not ready: migrations not applied yet");
        return NRPC_OK;
    }
    if (pool_up_count(pg) == 0) {
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, "unavailable", "database unavailable");
        return NRPC_OK;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL || (nparams > 0 && (r->params = calloc((size_t)nparams, sizeof(char *))) == NULL)) {
        free(r);
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, "unavailable", "out of memory");
        return NRPC_OK;
    }
    r->call = call;
    r->statement = statement;
    r->nparams = nparams;
    r->cb = cb;
    r->arg = arg;
    for (i = 0; i < nparams; i++)
        if (params[i] && (r->params[i] = strdup(params[i])) == NULL) {
            request_refuse(r, "unavailable", "out of memory");
            return NRPC_OK;
        }
    for (i = 0; i < pg->nconns; i++)
        if (pg->conns[i].state == CONN_IDLE) {
            conn_send(&pg->conns[i], r);
            return NRPC_OK;
        }
    if (pg->nwaiting >= pg->opts.max_waiting) {
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, "overloaded",
                  "database pool busy: %d calls waiting for a connection", pg->nwaiting);
        request_free(r);
        return NRPC_OK;
    }
    if (pg->wait_tail)
        pg->wait_tail->next = r;
    else
        pg->wait_head = r;
    pg->wait_tail = r;
    pg->nwaiting++;
    return NRPC_OK;
}

void
nrpc_pg_fail(nrpc_call *call, const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (msg == NULL)
        msg = PQresultErrorMessage(res);
    if (state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0))
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL, "%s", msg);
    else if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, "unavailable", "database unavailable: %s", msg);
    else
        nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "database error %s: %s", state ? state : "?",
                  msg);
}

int
nrpc_pg_ready(nrpc_pg *pg)
{
    return pg && pg->migrated && pool_up_count(pg) > 0;
}

/* ---- migrations (own thread: blocking libpq is fine there) ------------- */

typedef struct {
    long long version;
    char *name; /* file name */
} migration;

static int
migration_cmp(const void *a, const void *b)
{
    const migration *x = a, *y = b;
    return x->version < y->version ? -1 : x->version > y->version;
}

/* Lists "<number>_<name>.sql" files sorted by number. Returns the count,
 * or -1 when the folder cannot be read or two files share a number. */
static int
migrations_list(const char *dir, migration **out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    migration *list = NULL;
    int n = 0, cap = 0, i;

    *out = NULL;
    if (d == NULL) {
        nrpc_log(NRPC_LOG_ERROR, "migrations folder %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char *end;
        size_t len = strlen(e->d_name);
        long long v = strtoll(e->d_name, &end, 10);
        if (end == e->d_name || len < 5 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        if (n == cap) {
            migration *bigger = realloc(list, (size_t)(cap = cap ? cap * 2 : 8) * sizeof *list);
            if (bigger == NULL)
                break;
            list = bigger;
        }
        list[n].version = v;
        list[n].name = strdup(e->d_name);
        n++;
    }
    closedir(d);
    qsort(list, (size_t)n, sizeof *list, migration_cmp);
    for (i = 1; i < n; i++)
        if (list[i].version == list[i - 1].version) {
            nrpc_log(NRPC_LOG_ERROR, "migrations %s and %s share number %lld", list[i - 1].name,
                     list[i].name, list[i].version);
            for (i = 0; i < n; i++)
                free(list[i].name);
            free(list);
            return -1;
        }
    *out = list;
    return n;
}

static char *
read_file(const char *dir, const char *name)
{
    char path[4096];
    FILE *f;
    char *buf = NULL;
    long len;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len + 1)) != NULL) {
        if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
            free(buf);
            buf = NULL;
        } else {
            buf[len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static void sleep_ms(int ms);

static int
exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

/* Applies every migration not yet recorded, in one transaction under an
 * advisory lock, so replicas starting together apply each exactly once.
 * Returns 0, or -1 with err set (the transaction is rolled back). */
static int
migrate(PGconn *c, const char *dir, atomic_int *stop, char *err, size_t errlen)
{
    migration *list = NULL;
    int n = 0, i, rc = -1, applied = 0;
    char lock[128];


    snprintf(lock, sizeof lock, "SELECT pg_try_advisory_xact_lock(%d)", MIGRATION_LOCK_KEY);
    if (dir && (n = migrations_list(dir, &list)) < 0) {
        snprintf(err, errlen, "cannot read the migrations in %s", dir);
        return -1;
    }
    if (exec_ok(c, "BEGIN", err, errlen) != 0)
        goto done;
    /* Try, not wait: a blocking lock would leave a stop waiting on another
     * replica's migrations (or a stuck session) for as long as they last. */
    for (int tries = 0;; tries++) {
        PGresult *r = PQexec(c, lock);
        int got = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                  strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(err, errlen, "%s", PQresultErrorMessage(r));
            PQclear(r);
            goto done;
        }
        PQclear(r);
        if (got)
            break;
        if (atomic_load(stop)) {
            snprintf(err, errlen, "stopping");
            goto done;
        }
        if (tries % 50 == 0)
            nrpc_log(NRPC_LOG_INFO, "waiting for another replica's migrations (advisory lock %d)",
                     MIGRATION_LOCK_KEY);
        sleep_ms(100);
    }
    if (exec_ok(c,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version bigint PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                err, errlen) != 0)
        goto done;
    for (i = 0; i < n; i++) {
        char v[32];
        const char *params[2] = {v, list[i].name};
        PGresult *r;
        char *sql;
        int known;

        snprintf(v, sizeof v, "%lld", list[i].version);
        r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL, params,
                         NULL, NULL, 0);
        known = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(err, errlen, "%s", PQresultErrorMessage(r));
            PQclear(r);
            goto done;
        }
        PQclear(r);
        if (known)
            continue;
        sql = read_file(dir, list[i].name);
        if (sql == NULL) {
            snprintf(err, errlen, "cannot read %s/%s", dir, list[i].name);
            goto done;
        }
        if (exec_ok(c, sql, err, errlen) != 0) {
            char inner[512];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, errlen, "migration %s failed: %s", list[i].name, inner);
            free(sql);
            goto done;
        }
        free(sql);
        r = PQexecParams(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                         NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "%s", PQresultErrorMessage(r));
            PQclear(r);
            goto done;
        }
        PQclear(r);
        nrpc_log(NRPC_LOG_INFO, "migration %s applied", list[i].name);
        applied++;
    }
    if (exec_ok(c, "COMMIT", err, errlen) != 0)
        goto done;
    nrpc_log(NRPC_LOG_INFO, "database schema up to date (%d migrations, %d applied now)", n,
             applied);
    rc = 0;
done:
    if (rc != 0) {
        char ignored[64];
        exec_ok(c, "ROLLBACK", ignored, sizeof ignored);
    }
    for (i = 0; i < n; i++)
        free(list[i].name);
    free(list);
    return rc;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *
migrator_main(void *arg)
{
    nrpc_pg *pg = arg;
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {pg->conninfo, "5", "natsrpc-migrations", NULL};
    int attempt = 0, delay = BACKOFF_MIN_MS;

    while (!atomic_load(&pg->migrator_stop)) {
        char err[1024] = "";
        PGconn *c = PQconnectdbParams(keys, vals, 1);
        int ok = 0;

        if (c)
            PQsetNoticeProcessor(c, pg_notice, NULL);
        attempt++;
        if (PQstatus(c) != CONNECTION_OK)
            snprintf(err, sizeof err, "%s", PQerrorMessage(c));
        else
            ok = migrate(c, pg->opts.migrations_dir, &pg->migrator_stop, err, sizeof err) == 0;
        PQfinish(c);
        if (ok) {
            uv_async_send(&pg->migrated_async);
            return NULL;
        }
        one_line(err);
        if (atomic_load(&pg->migrator_stop))
            break;
        if (attempt == 1 || attempt % 10 == 0)
            nrpc_log(NRPC_LOG_WARN, "database not ready (%s); retrying in %d ms (attempt %d)", err,
                     delay, attempt);
        /* Sleep in slices so that a stop does not wait out the backoff. */
        for (int slept = 0; slept < delay && !atomic_load(&pg->migrator_stop); slept += 50)
            sleep_ms(50);
        delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    }
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
}

/* ---- life -------------------------------------------------------------- */

nrpc_status
nrpc_pg_start(nrpc_pg **out, nrpc_service *svc, const nrpc_pg_opts *opts)
{
    nrpc_pg *pg;
    const char *ci;
    int i;

    *out = NULL;
    if (svc == NULL || svc->loop == NULL)
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
    pg->loop = svc->loop;
    pg->nconns = pg->opts.pool_size;
    pg->conns = calloc((size_t)pg->nconns, sizeof *pg->conns);
    if (pg->conninfo == NULL || pg->conns == NULL) {
        free(pg->conninfo);
        free(pg->conns);
        free(pg);
        return NRPC_ERR_NOMEM;
    }
    for (i = 0; i < pg->nconns; i++) {
        pg_conn *conn = &pg->conns[i];
        conn->pg = pg;
        conn->index = i;
        conn->state = CONN_DOWN;
        conn->poll_fd = -1;
        uv_timer_init(pg->loop, &conn->timer);
        conn->timer.data = conn;
    }
    uv_async_init(pg->loop, &pg->migrated_async, on_migrated);
    pg->migrated_async.data = pg;
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
 * loop: libuv may run close callbacks in any order. */
static void
pg_handle_closed(uv_handle_t *h)
{
    nrpc_pg *pg = h->type == UV_TIMER ? ((pg_conn *)h->data)->pg : h->data;
    if (--pg->closing > 0)
        return;
    free(pg->conns);
    free(pg->conninfo);
    free(pg);
}

void
nrpc_pg_stop(nrpc_pg *pg)
{
    int i;

    if (pg == NULL)
        return;
    pg->stopping = 1;
    if (pg->migrator_started) {
        atomic_store(&pg->migrator_stop, 1);
        pthread_join(pg->migrator, NULL);
    }
    refuse_all_waiting(pg, "the service is stopping");
    for (i = 0; i < pg->nconns; i++) {
        pg_conn *conn = &pg->conns[i];
        if (conn->req) {
            request_refuse(conn->req, "unavailable", "the service is stopping");
            conn->req = NULL;
        }
        PQclear(conn->first);
        conn_poll_stop(conn);
        if (conn->c)
            PQfinish(conn->c);
        conn->c = NULL;
        pg->closing++;
        uv_close((uv_handle_t *)&conn->timer, pg_handle_closed);
    }
    pg->closing++;
    uv_close((uv_handle_t *)&pg->migrated_async, pg_handle_closed);
}
