/* services.c: natsrpc ls, ping, info and stats, from the NATS service API
 * ($SRV.PING/INFO/STATS, scatter-gather). Tables on stdout; --json prints
 * the replies as they came, in one array. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int
by_name_id(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(str(x, "name"), str(y, "name"));
    return c ? c : strcmp(str(x, "id"), str(y, "id"));
}

/* Replies sorted by service name, then id: a new array. */
static json_t *
sorted(json_t *replies)
{
    size_t n = json_array_size(replies), i;
    json_t **v = malloc((n ? n : 1) * sizeof *v), *out = json_array();

    for (i = 0; v && i < n; i++)
        v[i] = json_array_get(replies, i);
    if (v)
        qsort(v, n, sizeof *v, by_name_id);
    for (i = 0; v && i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

/* Gathers $SRV.<verb>[.<name>] into *out (sorted). Returns an exit status. */
static int
gather(const cli_opts *o, const char *verb, const char *name, json_t **out)
{
    natsConnection *nc;
    char subject[512];
    json_t *replies = NULL;
    int rc;

    *out = NULL;
    if (name && (!*name || strpbrk(name, ". *>\t") != NULL)) {
        cli_err("'%s' is not a service name", name);
        return CLI_EXIT_USAGE;
    }
    snprintf(subject, sizeof subject, "$SRV.%s%s%s", verb, name ? "." : "", name ? name : "");
    nc = cli_connect(o);
    if (nc == NULL)
        return CLI_EXIT_CONN;
    rc = cli_gather(nc, o, subject, &replies);
    cli_close(nc);
    if (rc != CLI_EXIT_OK) {
        json_decref(replies);
        return rc;
    }
    *out = sorted(replies);
    json_decref(replies);
    return CLI_EXIT_OK;
}

/* "first_name: string, last_name: string = """ from the params metadata. */
static void
params_line(json_t *ep, char *buf, size_t len)
{
    json_t *md = json_object_get(ep, "metadata"), *params, *p;
    const char *text = json_string_value(json_object_get(md, "params"));
    size_t i, used = 0;

    buf[0] = '\0';
    params = text ? json_loads(text, 0, NULL) : NULL;
    json_array_foreach(params, i, p)
    {
        char *def = json_object_get(p, "default")
                        ? json_dumps(json_object_get(p, "default"), JSON_ENCODE_ANY)
                        : NULL;
        int n = snprintf(buf + used, len - used, "%s%s: %s%s%s", i ? ", " : "", str(p, "name"),
                         str(p, "type"), def ? " = " : "", def ? def : "");
        free(def);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (!text)
        snprintf(buf, len, "?");
    if (strcmp(str(md, "varargs"), "true") == 0 && used + 8 < len)
        used += (size_t)snprintf(buf + used, len - used, "%s*args", used ? ", " : "");
    if (strcmp(str(md, "varkw"), "true") == 0 && used + 10 < len)
        snprintf(buf + used, len - used, "%s**kwargs", used ? ", " : "");
    json_decref(params);
}

int
cli_cmd_ls(const cli_opts *o, int argc, char **argv)
{
    json_t *replies, *r;
    cli_table t;
    size_t i;
    int rc;

    if (argc > 0) {
        cli_err("ls takes no arguments (natsrpc info <service> shows one)");
        return CLI_EXIT_USAGE;
    }
    rc = gather(o, "INFO", NULL, &replies);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (o->json) {
        cli_print_json(replies, 1);
        json_decref(replies);
        return CLI_EXIT_OK;
    }
    if (json_array_size(replies) == 0) {
        cli_err("no services answered");
        json_decref(replies);
        return CLI_EXIT_OK;
    }
    cli_table_init(&t, 5);
    cli_table_row(&t, (const char *[]){"NAME", "VERSION", "ID", "RPCS", "DESCRIPTION"});
    json_array_foreach(replies, i, r)
    {
        char n[16];
        snprintf(n, sizeof n, "%zu", json_array_size(json_object_get(r, "endpoints")));
        cli_table_row(&t, (const char *[]){str(r, "name"), str(r, "version"), str(r, "id"), n,
                                       str(r, "description")});
    }
    cli_table_print(&t, "");
    json_decref(replies);
    return CLI_EXIT_OK;
}

int
cli_cmd_ping(const cli_opts *o, int argc, char **argv)
{
    json_t *replies, *r;
    cli_table t;
    size_t i;
    int rc;

    if (argc > 1) {
        cli_err("ping takes at most one service name");
        return CLI_EXIT_USAGE;
    }
    rc = gather(o, "PING", argc ? argv[0] : NULL, &replies);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (o->json) {
        cli_print_json(replies, 1);
    } else if (json_array_size(replies) > 0) {
        cli_table_init(&t, 3);
        cli_table_row(&t, (const char *[]){"NAME", "VERSION", "ID"});
        json_array_foreach(replies, i, r)
            cli_table_row(&t, (const char *[]){str(r, "name"), str(r, "version"), str(r, "id")});
        cli_table_print(&t, "");
    }
    rc = json_array_size(replies) == 0 && argc ? CLI_EXIT_RPC : CLI_EXIT_OK;
    if (json_array_size(replies) == 0)
        cli_err(argc ? "no instance of %s answered" : "no services answered%s",
                argc ? argv[0] : "");
    json_decref(replies);
    return rc;
}

/* info and stats need exactly one service, and fail when none answers. */
static int
one_service(const cli_opts *o, const char *verb, int argc, char **argv, json_t **replies)
{
    int rc;

    if (argc != 1) {
        cli_err("which service? (natsrpc ls lists them)");
        return CLI_EXIT_USAGE;
    }
    rc = gather(o, verb, argv[0], replies);
    if (rc == CLI_EXIT_OK && json_array_size(*replies) == 0) {
        cli_err("no service named '%s' answered", argv[0]);
        json_decref(*replies);
        *replies = NULL;
        return CLI_EXIT_RPC;
    }
    return rc;
}

int
cli_cmd_info(const cli_opts *o, int argc, char **argv)
{
    json_t *replies, *r, *ep;
    cli_table t;
    size_t i, j;
    int rc = one_service(o, "INFO", argc, argv, &replies);

    if (rc != CLI_EXIT_OK)
        return rc;
    if (o->json) {
        cli_print_json(replies, 1);
        json_decref(replies);
        return CLI_EXIT_OK;
    }
    json_array_foreach(replies, i, r)
    {
        printf("%s%s %s (id %s)\n", i ? "\n" : "", str(r, "name"), str(r, "version"), str(r, "id"));
        if (*str(r, "description"))
            printf("  %s\n", str(r, "description"));
        printf("\n");
        cli_table_init(&t, 4);
        cli_table_row(&t, (const char *[]){"RPC", "SUBJECT", "PARAMETERS", "DESCRIPTION"});
        json_array_foreach(json_object_get(r, "endpoints"), j, ep)
        {
            char params[1024];
            params_line(ep, params, sizeof params);
            cli_table_row(&t, (const char *[]){str(ep, "name"), str(ep, "subject"), params,
                                           str(json_object_get(ep, "metadata"), "description")});
        }
        cli_table_print(&t, "  ");
    }
    json_decref(replies);
    return CLI_EXIT_OK;
}

int
cli_cmd_stats(const cli_opts *o, int argc, char **argv)
{
    json_t *replies, *r, *ep;
    cli_table t;
    size_t i, j;
    json_int_t total = 0, errors = 0;
    int rc = one_service(o, "STATS", argc, argv, &replies);

    if (rc != CLI_EXIT_OK)
        return rc;
    if (o->json) {
        cli_print_json(replies, 1);
        json_decref(replies);
        return CLI_EXIT_OK;
    }
    cli_table_init(&t, 10);
    cli_table_row(&t, (const char *[]){"RPC", "ID", "REQUESTS", "ERRORS", "AVG MS", "P50 MS", "P90 MS",
                                   "P99 MS", "IN FLIGHT", "LAST ERROR"});
    json_array_foreach(replies, i, r)
    {
        json_array_foreach(json_object_get(r, "endpoints"), j, ep)
        {
            json_t *d = json_object_get(ep, "data");
            char c[6][32];
            json_int_t n = json_integer_value(json_object_get(ep, "num_requests"));
            json_int_t e = json_integer_value(json_object_get(ep, "num_errors"));
            total += n;
            errors += e;
            snprintf(c[0], sizeof c[0], "%lld", (long long)n);
            snprintf(c[1], sizeof c[1], "%lld", (long long)e);
            snprintf(c[2], sizeof c[2], "%.3f",
                     (double)json_integer_value(json_object_get(ep, "average_processing_time")) /
                         1e6);
            snprintf(c[3], sizeof c[3], "%.3f", json_number_value(json_object_get(d, "p50_ms")));
            snprintf(c[4], sizeof c[4], "%.3f", json_number_value(json_object_get(d, "p90_ms")));
            snprintf(c[5], sizeof c[5], "%.3f", json_number_value(json_object_get(d, "p99_ms")));
            {
                char inflight[32];
                snprintf(inflight, sizeof inflight, "%lld",
                         (long long)json_integer_value(json_object_get(d, "in_flight")));
                cli_table_row(&t, (const char *[]){str(ep, "name"), str(r, "id"), c[0], c[1], c[2],
                                               c[3], c[4], c[5], inflight, str(ep, "last_error")});
            }
        }
    }
    cli_table_print(&t, "");
    printf("\n%s: %zu instance%s, %lld requests, %lld errors\n", argv[0], json_array_size(replies),
           json_array_size(replies) == 1 ? "" : "s", (long long)total, (long long)errors);
    json_decref(replies);
    return CLI_EXIT_OK;
}
