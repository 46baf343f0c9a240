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
    /** 1: relay the transactional outbox (below) of this service to
     * JetStream. */
    int outbox;
} nrpc_pg_opts;

/*
 * THE TRANSACTIONAL OUTBOX. An event written to the database in the same
 * transaction as the change it reports is published exactly when the change
 * commits: never for a transaction that aborted, never lost for one that
 * committed, whatever crashes between the commit and the publish.
 *
 * A statement writes its event as one more part of the statement, with
 * NRPC_PG_OUTBOX_INSERT in a data-modifying CTE:
 *
 *   WITH t AS (INSERT INTO thing (name) VALUES ($1) RETURNING uuid, name),
 *        e AS (NRPC_PG_OUTBOX_INSERT("thing_service", "thing_created",
 *                                    "json_build_object('uuid', uuid, 'name', name)", "t"))
 *   SELECT uuid, name FROM t
 *
 * With opts.outbox set, a relay on the service's loop thread claims pending
 * rows of this service oldest first (a lease of NRPC_OUTBOX_LEASE_S, 10 s,
 * so replicas share the work and a crashed relay's rows come back), emits
 * each with nrpc_service_emit_text (the service must declare the event)
 * with the row's id as its event id, so Nats-Msg-Id, and marks the stored
 * ones sent. A failed publish or mark is retried with backoff: through a
 * NATS outage, a PostgreSQL restart and a crash of the service, every
 * committed row is published, and a row published twice (a crash between
 * publish and mark) is dropped by the stream's duplicate window. A
 * statement that writes the outbox wakes the relay when it commits; the
 * relay also looks every NRPC_OUTBOX_POLL_MS (1000) for rows of replicas
 * and expired leases. Sent rows are deleted after NRPC_OUTBOX_KEEP_S (1
 * day).
 *
 * The table, created by one of the service's migrations:
 *
 *   CREATE TABLE nrpc_outbox (
 *       id uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- the event id
 *       seq bigserial NOT NULL,                           -- publish order
 *       service text NOT NULL,
 *       event text NOT NULL,
 *       body text NOT NULL,                               -- [args, kwargs]
 *       created_at timestamptz NOT NULL DEFAULT now(),
 *       claimed_by text,
 *       claimed_until timestamptz,
 *       sent_at timestamptz
 *   );
 *   CREATE INDEX nrpc_outbox_pending ON nrpc_outbox (service, seq)
 *       WHERE sent_at IS NULL;
 */

/** SQL text of an INSERT of event `event` of `service` into the outbox, for
 * a CTE: one row per row of from_sql, with body [[], kwargs_sql] where
 * kwargs_sql is a json expression over from_sql's columns. All four are
 * string literals. */
#define NRPC_PG_OUTBOX_INSERT(service, event, kwargs_sql, from_sql)                                \
    "INSERT INTO nrpc_outbox (service, event, body) SELECT '" service "', '" event "', "          \
    "json_build_array('[]'::json, " kwargs_sql ")::text FROM " from_sql

/** Starts the pool for svc (call it from on_start). Start-up never fails
 * because the database is down: a background thread applies the migrations,
 * retrying with backoff and saying so in the log, and the pool connects once
 * they are in. Until then queries end with 503. opts is copied (its strings
 * and tables are borrowed and must outlive the pool). *out is new:
 * nrpc_pg_stop.
 *
 * conninfo may name several hosts, as libpq allows
 * ("postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write"):
 * each connection of the pool tries them in order, as psql does. */
nrpc_status nrpc_pg_start(nrpc_pg **out, nrpc_service *svc, const nrpc_pg_opts *opts);

/** Closes every connection and frees the pool (call it from on_stop). Every
 * query not finished yet calls back with NRPC_CODE_CANCELED first. NULL-safe. */
void nrpc_pg_stop(nrpc_pg *pg);

/** 1 once migrations are applied and at least one connection is up. */
int nrpc_pg_ready(nrpc_pg *pg);

/** Receives the end of a query, exactly once, on the loop thread (natsrpc.h's
 * callback contract):
 *   code 0     res is the server's answer, borrowed for the callback: a
 *              result, or an SQL error (PQresultStatus tells; nrpc_pg_failed
 *              maps it);
 *   503        the database cannot answer: not migrated yet, down, the
 *              connection was lost mid-query, or too many calls wait for a
 *              connection ("overloaded");
 *   504        the call's deadline passed while it waited for a connection
 *              or while the query ran (the query was canceled on the server);
 *   NRPC_CODE_CANCELED  the call was answered before the database did, or
 *              the pool is stopping.
 * For codes other than 0, res is NULL and error says why. A query that was
 * on the wire when it was canceled or lost may have committed. */
typedef void (*nrpc_pg_cb)(nrpc_call *call, int code, const PGresult *res, const char *error,
                           void *arg);

/** Runs the prepared statement `statement` with text parameters (NULL
 * entries are SQL NULL; the array is copied) for call, and defers the call.
 * Holds a reference on call until cb has run. The time call has left
 * (nrpc_call_time_left_ms) bounds both the wait for a connection and the
 * query. A statement that commits has committed when cb runs with code 0.
 * Returns NRPC_ERR_INVALID_ARG, NRPC_ERR_NOMEM or NRPC_ERR_STATE (pool
 * stopped, call answered) without calling back. */
nrpc_status nrpc_pg_query(nrpc_pg *pg, nrpc_call *call, const char *statement, int nparams,
                          const char *const *params, nrpc_pg_cb cb, void *arg);

/** For the start of a query callback: when the query did not succeed (code
 * not 0, or res not PGRES_TUPLES_OK / PGRES_COMMAND_OK) answers call with
 * the matching error and returns 1; else returns 0. SQL errors map to 400
 * for invalid input (SQLSTATE classes 22, 23) with the server's message,
 * 503 for connection and shutdown errors (08, 57P), 500 otherwise. */
int nrpc_pg_failed(nrpc_call *call, int code, const PGresult *res, const char *error);

#ifdef __cplusplus
}
#endif
#endif /* NATSRPC_PG_H */
