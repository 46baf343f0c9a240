/*
 * natsrpc_pg.h: PostgreSQL for natsrpc services (library natsrpc_pg, libpq).
 *
 * A pool of non-blocking libpq connections driven by the service's loop
 * thread, so waiting on the database never blocks other calls; prepared
 * statements on every connection; versioned migrations applied at start-up
 * under an advisory lock; reconnects with backoff; and fail-fast 503 answers
 * while the database is down.
 *
 * Everything here runs on the service's loop thread (handlers, on_start,
 * on_stop), except where noted.
 */
#ifndef NATSRPC_PG_H
#define NATSRPC_PG_H

#include "natsrpc.h"

#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nrpc_pg nrpc_pg;

/** A statement prepared on every connection of the pool. */
typedef struct {
    const char *name;
    const char *sql; /**< one statement with $1..$n parameters */
} nrpc_pg_statement;

typedef struct {
    /** libpq URI or conninfo; NULL: $DATABASE_URL, else "dbname=natsrpc". */
    const char *conninfo;
    /** Connections; 0: $DB_POOL_SIZE, else 4. */
    int pool_size;
    /** Folder of numbered migrations "<number>_<name>.sql", applied in
     * order, each once, recorded in schema_migrations. NULL: none. */
    const char *migrations_dir;
    /** Prepared on every connection; terminated by {NULL}. */
    const nrpc_pg_statement *statements;
    /** Calls allowed to wait for a free connection; past it they get 503
     * overloaded. 0: 1000. */
    int max_waiting;
} nrpc_pg_opts;

/** Starts the pool for svc (call it from on_start). Start-up never fails
 * because the database is down: a background thread applies the migrations,
 * retrying with backoff and saying so in the log, and the pool connects once
 * they are in. Until then queries are answered 503. opts is copied (its
 * strings and tables are borrowed and must outlive the pool). *out is new:
 * nrpc_pg_stop. */
nrpc_status nrpc_pg_start(nrpc_pg **out, nrpc_service *svc, const nrpc_pg_opts *opts);

/** Closes every connection and frees the pool (call it from on_stop).
 * Queries still waiting are answered 503. NULL-safe. */
void nrpc_pg_stop(nrpc_pg *pg);

/** 1 once migrations are applied and at least one connection is up. */
int nrpc_pg_ready(nrpc_pg *pg);

/** Receives the server's answer to a query: res is borrowed for the
 * callback (PQresultStatus tells success or an SQL error; map errors with
 * nrpc_pg_fail). The callback must answer the call or start another query.
 */
typedef void (*nrpc_pg_cb)(nrpc_call *call, const PGresult *res, void *arg);

/** Runs the prepared statement `statement` with text parameters (NULL
 * entries are SQL NULL; the array is copied) for call, and defers the
 * call. When the database cannot answer (down, not ready, connection lost
 * mid-query, too many calls waiting) the call is answered 503 by the pool
 * and cb never runs. A query on the wire is acknowledged only after the
 * server's reply, so a statement that commits has committed when cb runs. */
nrpc_status nrpc_pg_query(nrpc_pg *pg, nrpc_call *call, const char *statement, int nparams,
                          const char *const *params, nrpc_pg_cb cb, void *arg);

/** Answers call for an SQL error result: 400 for invalid input (SQLSTATE
 * class 22, 23) with the server's message, 503 for connection and shutdown
 * errors (08, 57P), 500 otherwise. */
void nrpc_pg_fail(nrpc_call *call, const PGresult *res);

#ifdef __cplusplus
}
#endif
#endif /* NATSRPC_PG_H */
