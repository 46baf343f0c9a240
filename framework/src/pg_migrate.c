/* pg_migrate.c: versioned migrations for natsrpc_pg, applied at start-up
 * on a thread of their own (blocking libpq is fine there): numbered files
 * "<number>_<name>.sql", each once, in order, in one transaction under an
 * advisory lock so that replicas starting together apply each exactly
 * once. */
#include "pg_private.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIGRATION_LOCK_KEY 7429001 /* pg_advisory_xact_lock key: natsrpc migrations */


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

/* A migration's SQL: new (free), or NULL with err filled. */
#define MIGRATION_MAX (16 * 1024 * 1024)
static char *
read_migration(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096];
    size_t len;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    return nrpc_read_file(path, MIGRATION_MAX, &len, err, errlen);
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

/* Runs a query that returns rows: 0 with *out (PQclear it), or -1 with err
 * set. */
static int
query_rows(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **out,
           char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    *out = r;
    return 0;
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
        PGresult *r;
        int got;
        if (query_rows(c, lock, 0, NULL, &r, err, errlen) != 0)
            goto done;
        got = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
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
        if (query_rows(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, &r, err,
                       errlen) != 0)
            goto done;
        known = PQntuples(r) > 0;
        PQclear(r);
        if (known)
            continue;
        sql = read_migration(dir, list[i].name, err, errlen);
        if (sql == NULL)
            goto done;
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

int
nrpc__pg_migrate_until_done(const char *conninfo, const char *dir, atomic_int *stop)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {conninfo, "5", "natsrpc-migrations", NULL};
    int attempt = 0;

    while (!atomic_load(stop)) {
        char err[1024] = "";
        PGconn *c = PQconnectdbParams(keys, vals, 1);
        int ok = 0;
        int64_t delay;

        if (c)
            PQsetNoticeProcessor(c, nrpc__pg_notice, NULL);
        attempt++;
        if (PQstatus(c) != CONNECTION_OK)
            snprintf(err, sizeof err, "%s", PQerrorMessage(c));
        else
            ok = migrate(c, dir, stop, err, sizeof err) == 0;
        PQfinish(c);
        if (ok)
            return 0;
        nrpc__pg_one_line(err);
        if (atomic_load(stop))
            break;
        delay = nrpc_backoff_ms(attempt, NRPC_PG_BACKOFF_MIN_MS, NRPC_PG_BACKOFF_MAX_MS);
        if (attempt == 1 || attempt % 10 == 0)
            nrpc_log(NRPC_LOG_WARN, "database not ready (%s); retrying in %lld ms (attempt %d)",
                     err, (long long)delay, attempt);
        /* Sleep in slices so that a stop does not wait out the backoff. */
        for (int64_t slept = 0; slept < delay && !atomic_load(stop); slept += 50)
            sleep_ms(50);
    }
    return -1;
}
