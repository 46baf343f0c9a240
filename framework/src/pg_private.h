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

#endif
