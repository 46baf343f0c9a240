/* thing.c: thing_service, things kept in PostgreSQL.
 * Subjects: thing_service.create_thing, .get_things, .get_thing,
 * .rename_thing, .delete_thing. Events: thing_service.thing_created,
 * .thing_renamed, .thing_deleted, each [[], {uuid, name, is_created_at}].
 *
 * Every handler validates its input, runs one prepared statement through
 * the pool (natsrpc_pg.h) and answers from the result callback; the pool
 * answers 503 by itself while the database is down. The statements that
 * change a thing write its event to the outbox in the same statement, so
 * the event is published (by the pool's relay) exactly when the change
 * commits. */
#include <natsrpc.h>
#include <natsrpc_pg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thing.h"

#define NAME_MAX_CHARS 200
#define PAGE_MAX 1000

/* Columns every statement returns, in this order: uuid, name, created. */
#define THING_COLUMNS                                                                              \
    "uuid::text, name, to_char(is_created_at AT TIME ZONE 'UTC', "                                 \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* A changed thing as the kwargs of its event, from a CTE's columns. */
#define THING_JSON                                                                                 \
    "json_build_object('uuid', uuid, 'name', name, 'is_created_at', "                              \
    "to_char(is_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
#define THING_EVENT(event, from) NRPC_PG_OUTBOX_INSERT("thing_service", event, THING_JSON, from)

static const nrpc_pg_statement thing_statements[] = {
    {"create_thing",
     "WITH ins AS (INSERT INTO thing (name) VALUES ($1) RETURNING uuid, name, is_created_at),"
     " ev AS (" THING_EVENT("thing_created", "ins") ")"
     " SELECT " THING_COLUMNS " FROM ins"},
    /* One statement: if request_id was seen before, the unique violation
     * rolls the whole statement back, thing included, and the handler reads
     * the first result instead. A concurrent retry waits on the index entry
     * of the first and then sees the same violation. */
    {"create_thing_once",
     "WITH ins AS (INSERT INTO thing (name) VALUES ($1) RETURNING uuid, name, is_created_at),"
     " req AS (INSERT INTO thing_request (request_id, thing_uuid, name, is_created_at)"
     "         SELECT $2, uuid, name, is_created_at FROM ins),"
     " ev AS (" THING_EVENT("thing_created", "ins") ")"
     " SELECT " THING_COLUMNS " FROM ins"},
    {"first_result", "SELECT thing_uuid::text, name, to_char(is_created_at AT TIME ZONE 'UTC', "
                     "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM thing_request WHERE request_id = $1"},
    {"first_page", "SELECT " THING_COLUMNS " FROM thing ORDER BY is_created_at, uuid LIMIT $1"},
    {"next_page", "SELECT " THING_COLUMNS " FROM thing WHERE (is_created_at, uuid) > "
                  "($2::timestamptz, $3::uuid) ORDER BY is_created_at, uuid LIMIT $1"},
    {"get_thing", "SELECT " THING_COLUMNS " FROM thing WHERE uuid = $1"},
    {"rename_thing",
     "WITH up AS (UPDATE thing SET name = $2 WHERE uuid = $1 RETURNING uuid, name, is_created_at),"
     " ev AS (" THING_EVENT("thing_renamed", "up") ")"
     " SELECT " THING_COLUMNS " FROM up"},
    {"delete_thing",
     "WITH del AS (DELETE FROM thing WHERE uuid = $1 RETURNING uuid, name, is_created_at),"
     " ev AS (" THING_EVENT("thing_deleted", "del") ")"
     " SELECT " THING_COLUMNS " FROM del"},
    {NULL, NULL},
};

static nrpc_pg *
pool(nrpc_call *call)
{
    return nrpc_service_data(nrpc_call_service(call));
}

/* ---- validation -------------------------------------------------------- */

/* 1 if s is a UUID in its text form (8-4-4-4-12 hex digits). */
int
thing_uuid_valid(const char *s)
{
    static const int dash[] = {8, 13, 18, 23};
    size_t i, d = 0;

    if (s == NULL || strlen(s) != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        if (d < 4 && (int)i == dash[d]) {
            if (s[i] != '-')
                return 0;
            d++;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                     (s[i] >= 'A' && s[i] <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* Bytes of the whitespace character (Unicode White_Space, what Python's
 * str.strip removes) that starts at p, or 0. p has n bytes. */
static size_t
space_at(const unsigned char *p, size_t n)
{
    if (n >= 1 && (*p == ' ' || (*p >= '\t' && *p <= '\r')))
        return 1;
    if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0))
        return 2; /* U+0085, U+00A0 */
    if (n >= 3 && p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80)
        return 3; /* U+1680 */
    if (n >= 3 && p[0] == 0xE2 && p[1] == 0x80 &&
        (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF) && p[2] >= 0x80)
        return 3; /* U+2000..U+200A, U+2028, U+2029, U+202F */
    if (n >= 3 && p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F)
        return 3; /* U+205F */
    if (n >= 3 && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
        return 3; /* U+3000 */
    return 0;
}

/* Bytes of the whitespace character that ends just before end, or 0. */
static size_t
space_before(const unsigned char *start, const unsigned char *end)
{
    size_t k;
    for (k = 1; k <= 3 && k <= (size_t)(end - start); k++)
        if (space_at(end - k, k) == k)
            return k;
    return 0;
}

/* Trims whitespace, ASCII and Unicode, from both ends of in into out (size
 * outlen). Returns the number of characters (UTF-8 code points) left, or
 * -1 when it does not fit. */
int
thing_name_trim(const char *in, char *out, size_t outlen)
{
    const unsigned char *b = (const unsigned char *)in, *e = b + strlen(in);
    size_t k, len;
    int chars = 0;

    while ((k = space_at(b, (size_t)(e - b))) > 0)
        b += k;
    while (e > b && (k = space_before(b, e)) > 0)
        e -= k;
    len = (size_t)(e - b);
    if (len >= outlen)
        return -1;
    memcpy(out, b, len);
    out[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)out[i] & 0xC0) != 0x80) /* not a continuation byte */
            chars++;
    return chars;
}

/* Validates and trims the 'name' argument into buf; answers 400 itself
 * and returns -1 when it is not 1 to 200 characters. */
static int
name_or_fail(nrpc_call *call, char *buf, size_t len)
{
    int chars = thing_name_trim(nrpc_arg_string(call, "name"), buf, len);
    if (chars < 1 || chars > NAME_MAX_CHARS) {
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL,
                  "argument 'name' must be 1 to %d characters after trimming, not %s",
                  NAME_MAX_CHARS, chars < 0 ? "more" : chars == 0 ? "empty" : "longer");
        return -1;
    }
    return 0;
}

static int
uuid_or_fail(nrpc_call *call, const char **uuid)
{
    *uuid = nrpc_arg_string(call, "uuid");
    if (!thing_uuid_valid(*uuid)) {
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL, "argument 'uuid' is not a UUID: '%s'",
                  *uuid);
        return -1;
    }
    return 0;
}

/* ---- results ----------------------------------------------------------- */

static json_t *
thing_row(const PGresult *res, int row)
{
    return json_pack("{s:s, s:s, s:s}", "uuid", PQgetvalue(res, row, 0), "name",
                     PQgetvalue(res, row, 1), "is_created_at", PQgetvalue(res, row, 2));
}

/* One thing, or 404 naming the uuid. */
static void
on_one_thing(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    if (nrpc_pg_failed(call, code, res, error))
        return;
    if (PQntuples(res) == 0) {
        nrpc_fail(call, NRPC_CODE_NOT_FOUND, NULL, "no thing with uuid %s",
                  nrpc_arg_string(call, "uuid"));
        return;
    }
    nrpc_reply_value(call, thing_row(res, 0));
}

/* Starts a query for call, or answers it when the query cannot start. */
static void
query(nrpc_call *call, const char *statement, int nparams, const char *const *params,
      nrpc_pg_cb cb)
{
    nrpc_status st = nrpc_pg_query(pool(call), call, statement, nparams, params, cb, NULL);
    if (st != NRPC_OK)
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, NULL, "cannot query the database: %s",
                  nrpc_status_text(st));
}

/* ---- create_thing ------------------------------------------------------ */

static void
on_first_result(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    if (nrpc_pg_failed(call, code, res, error))
        return;
    if (PQntuples(res) == 0) { /* cannot happen: the violation names a row */
        nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "request_id seen but its result is missing");
        return;
    }
    nrpc_reply_value(call, thing_row(res, 0));
}

static void
on_created(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;

    if (code == 0 && state && strcmp(state, "23505") == 0 && constraint &&
        strcmp(constraint, "thing_request_pkey") == 0) {
        const char *params[1] = {nrpc_arg_string(call, "request_id")};
        if (params[0] == NULL) /* create_thing took the Idempotency-Key */
            params[0] = nrpc_call_idempotency_key(call);
        query(call, "first_result", 1, params, on_first_result);
        return;
    }
    if (nrpc_pg_failed(call, code, res, error))
        return;
    nrpc_reply_value(call, thing_row(res, 0));
}

static void
create_thing(nrpc_call *call)
{
    char name[4 * NAME_MAX_CHARS + 1];
    const char *request_id = nrpc_arg_string(call, "request_id");

    /* An HTTP client's Idempotency-Key (passed on by the gateway) makes its
     * retries safe the same way; a request_id in the call wins. */
    if (request_id == NULL)
        request_id = nrpc_call_idempotency_key(call);
    if (name_or_fail(call, name, sizeof name) != 0)
        return;
    if (request_id && (strlen(request_id) == 0 || strlen(request_id) > 200)) {
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL,
                  "argument 'request_id' must be 1 to 200 bytes");
        return;
    }
    if (request_id) {
        const char *params[2] = {name, request_id};
        query(call, "create_thing_once", 2, params, on_created);
    } else {
        const char *params[1] = {name};
        query(call, "create_thing", 1, params, on_created);
    }
}

/* ---- get_things -------------------------------------------------------- */

/* A cursor is "<is_created_at>,<uuid>" of the last thing of a page: the
 * keyset the next page starts after. Callers treat it as opaque. */
static void
on_page(nrpc_call *call, int code, const PGresult *res, const char *error, void *arg)
{
    json_int_t limit = nrpc_arg_int(call, "limit");
    json_t *things, *next;
    int n, i;

    if (code == 0 && PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strncmp(state, "22", 2) == 0 && nrpc_arg_string(call, "after")) {
            nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL,
                      "argument 'after' is not a cursor returned by get_things: %s",
                      PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
            return;
        }
    }
    if (nrpc_pg_failed(call, code, res, error))
        return;
    things = json_array();
    next = json_null();
    n = PQntuples(res);
    /* limit + 1 rows were asked for: one more than fits means a next page. */
    for (i = 0; i < n && i < limit; i++)
        json_array_append_new(things, thing_row(res, i));
    if (n > limit) {
        json_decref(next);
        next = json_sprintf("%s,%s", PQgetvalue(res, (int)limit - 1, 2),
                            PQgetvalue(res, (int)limit - 1, 0));
    }
    nrpc_reply(call, things, json_pack("{s:o}", "next", next));
}

static void
get_things(nrpc_call *call)
{
    json_int_t limit = nrpc_arg_int(call, "limit");
    const char *after = nrpc_arg_string(call, "after");
    char lim[32], ts[64];
    const char *comma;

    if (limit < 1 || limit > PAGE_MAX) {
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL,
                  "argument 'limit' must be between 1 and %d, not %lld", PAGE_MAX,
                  (long long)limit);
        return;
    }
    snprintf(lim, sizeof lim, "%lld", (long long)limit + 1);
    if (after == NULL) {
        const char *params[1] = {lim};
        query(call, "first_page", 1, params, on_page);
        return;
    }
    comma = strchr(after, ',');
    if (comma == NULL || (size_t)(comma - after) >= sizeof ts || comma == after ||
        !thing_uuid_valid(comma + 1)) {
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL,
                  "argument 'after' is not a cursor returned by get_things: '%s'", after);
        return;
    }
    memcpy(ts, after, (size_t)(comma - after));
    ts[comma - after] = '\0';
    {
        const char *params[3] = {lim, ts, comma + 1};
        /* A malformed timestamp comes back as SQLSTATE 22007: a 400. */
        query(call, "next_page", 3, params, on_page);
    }
}

/* ---- one thing --------------------------------------------------------- */

static void
get_thing(nrpc_call *call)
{
    const char *uuid;
    if (uuid_or_fail(call, &uuid) == 0)
        query(call, "get_thing", 1, &uuid, on_one_thing);
}

static void
rename_thing(nrpc_call *call)
{
    char name[4 * NAME_MAX_CHARS + 1];
    const char *uuid;

    if (uuid_or_fail(call, &uuid) != 0 || name_or_fail(call, name, sizeof name) != 0)
        return;
    {
        const char *params[2] = {uuid, name};
        query(call, "rename_thing", 2, params, on_one_thing);
    }
}

static void
delete_thing(nrpc_call *call)
{
    const char *uuid;
    if (uuid_or_fail(call, &uuid) == 0)
        query(call, "delete_thing", 1, &uuid, on_one_thing);
}

/* ---- the service ------------------------------------------------------- */

static int
thing_start(nrpc_service *svc)
{
    nrpc_pg *pg = NULL;
    const char *dir = getenv("THING_MIGRATIONS");
    nrpc_pg_opts opts = {
        .migrations_dir = dir && *dir ? dir : THING_MIGRATIONS_DIR,
        .statements = thing_statements,
        .outbox = 1, /* the events the statements write */
    };

    if (nrpc_pg_start(&pg, svc, &opts) != NRPC_OK)
        return -1;
    nrpc_service_set_data(svc, pg);
    return 0;
}

static void
thing_stop(nrpc_service *svc)
{
    nrpc_pg_stop(nrpc_service_data(svc));
    nrpc_service_set_data(svc, NULL);
}

/* The uuid the OpenAPI examples (/docs) show: well-formed, so a "Try it
 * out" reaches the database and gets 404 rather than a 400. */
#define UUID_EXAMPLE "\"6f1c2a4e-8b1d-4c55-9e0a-3d2b7f9c1a20\""

static const nrpc_param create_params[] = {
    {"name", NRPC_STRING, NULL, "1 to 200 characters after trimming", "\"Alice\""},
    {"request_id", NRPC_STRING, "null", "makes retries return the first result"},
    {NULL},
};
static const nrpc_param page_params[] = {
    {"limit", NRPC_INTEGER, "100", "things per page, 1 to 1000"},
    {"after", NRPC_STRING, "null", "the cursor 'next' of the previous page"},
    {NULL},
};
static const nrpc_param uuid_params[] = {
    {"uuid", NRPC_STRING, NULL, "the thing's uuid", UUID_EXAMPLE},
    {NULL},
};
static const nrpc_param rename_params[] = {
    {"uuid", NRPC_STRING, NULL, "the thing's uuid", UUID_EXAMPLE},
    {"name", NRPC_STRING, NULL, "the new name, 1 to 200 characters after trimming", "\"Bob\""},
    {NULL},
};

/* The seed's todo-style CRUD, on things (served by the gateway next to
 * POST /thing_service.<method>). */
static const char *const create_routes[] = {"POST /things 201 /things/{uuid}", NULL};
static const char *const list_routes[] = {"GET /things", NULL};
static const char *const get_routes[] = {"GET /things/{uuid}", NULL};
static const char *const rename_routes[] = {"PUT /things/{uuid}", NULL};
static const char *const delete_routes[] = {"DELETE /things/{uuid} 204", NULL};

static const nrpc_rpc thing_rpcs[] = {
    {"create_thing", create_thing, create_params, "Creates a thing and returns it.", 0,
     create_routes, "things:write"},
    {"get_things", get_things, page_params, "Lists things oldest first, a page at a time.", 0,
     list_routes, NRPC_PUBLIC},
    {"get_thing", get_thing, uuid_params, "Returns one thing.", 0, get_routes, NRPC_PUBLIC},
    {"rename_thing", rename_thing, rename_params, "Renames a thing and returns it.", 0,
     rename_routes, "things:write"},
    {"delete_thing", delete_thing, uuid_params, "Deletes a thing and returns it.", 0,
     delete_routes, "things:write"},
    {NULL},
};

static const nrpc_event thing_events[] = {
    /* Public to subscribe, as get_things is to call; only the service
     * publishes them (publish NULL). */
    {"thing_created", "A thing was created: [[], {uuid, name, is_created_at}].", NRPC_PUBLIC, NULL},
    {"thing_renamed", "A thing was renamed: [[], {uuid, name, is_created_at}].", NRPC_PUBLIC, NULL},
    {"thing_deleted", "A thing was deleted: [[], {uuid, name, is_created_at}].", NRPC_PUBLIC, NULL},
    {NULL},
};

const nrpc_service_def thing_service = {
    .name = "thing_service",
    .version = "1.0.0",
    .description = "Things kept in PostgreSQL.",
    .rpcs = thing_rpcs,
    .on_start = thing_start,
    .on_stop = thing_stop,
    .emits = thing_events,
};
