/* pg_private.h: what pg.c (the pool) and pg_migrate.c (migrations) share.
 * Both are written against the public headers alone, as any extension of
 * natsrpc could be. */
#ifndef NRPC_PG_PRIVATE_H
#define NRPC_PG_PRIVATE_H

#include "natsrpc_pg.h"

#include <stdatomic.h>

/* Reconnect and retry delays (nrpc_backoff_ms). */
#define NRPC_PG_BACKOFF_MIN_MS 100
#define NRPC_PG_BACKOFF_MAX_MS 2000

/* Connects with conninfo and applies the migrations of dir (NULL: none),
 * retrying with backoff until they are in (0) or *stop is set (-1).
 * Blocks: run it on a thread of its own. */
int nrpc__pg_migrate_until_done(const char *conninfo, const char *dir, atomic_int *stop);

/* libpq's notice processor: server notices go through nrpc_log. */
void nrpc__pg_notice(void *arg, const char *message);
/* Folds a multi-line libpq message onto one line, in place. */
void nrpc__pg_one_line(char *s);

/* The pool's own queries (no call): cb gets call NULL, exactly once. The
 * deadline is timeout_ms from now. */
nrpc_status nrpc__pg_run(nrpc_pg *pg, int64_t timeout_ms, const char *statement, int nparams,
                         const char *const *params, nrpc_pg_cb cb, void *arg);

/* The statements every connection prepares: the caller's, then (outbox
 * set) the relay's. New, free(); NULL when out of memory. */
nrpc_pg_statement *nrpc__pg_statements(const nrpc_pg_statement *user, int outbox);

/* pg_outbox.c: the relay of the transactional outbox. */
typedef struct nrpc__outbox nrpc__outbox;
nrpc__outbox *nrpc__outbox_new(nrpc_pg *pg, nrpc_service *svc); /* NULL when out of memory */
/* A pass soon (now, or after the one running). NULL-safe. */
void nrpc__outbox_kick(nrpc__outbox *ob);
/* Stops for good; frees itself when its emits have come back. NULL-safe. */
void nrpc__outbox_stop(nrpc__outbox *ob);

#endif
