/*
 * cli.h: private declarations of the natsrpc command-line client.
 *
 *   natsrpc.c   options, --help, dispatch
 *   conn.c      connecting, requests, scatter-gather, printing errors
 *   call.c      natsrpc call: arguments -> [args, kwargs], the reply
 *   services.c  natsrpc ls / ping / info / stats: tables from $SRV
 *   pubsub.c    natsrpc pub / sub
 *   events.c    natsrpc events ls / events tail / emit: events on JetStream
 *   table.c     the tables they print
 */
#ifndef NRPC_CLI_H
#define NRPC_CLI_H

#include <natsrpc.h>

#include <nats/nats.h>

/* Exit statuses, the same for every command. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_RPC 1   /* an error reply, no such rpc, no reply in time, nobody answered */
#define CLI_EXIT_USAGE 2 /* bad command line */
#define CLI_EXIT_CONN 3  /* cannot connect to NATS */

/* Where events tail starts reading. */
typedef enum {
    CLI_FROM_NEW = 0, /* events from now on */
    CLI_FROM_START,   /* --from-start: the first stored */
    CLI_FROM_TIME,    /* --since DURATION: stored within DURATION */
    CLI_FROM_SEQ,     /* --seq N: from stream sequence N */
} cli_from;

typedef struct {
    const char *server; /* --server, else NATS_URL, else the default */
    int64_t timeout_ms; /* --timeout */
    int json;           /* --json: raw JSON instead of tables */
    int raw;            /* --raw (sub, events tail): the data only */
    long count;         /* --count N (sub, events tail): stop after N messages; 0: never */
    cli_from from;      /* events tail: the last of --from-start, --since, --seq */
    int64_t since_ms;   /* --since */
    uint64_t seq;       /* --seq */
    const char *id;     /* emit --id: the event id (Nats-Msg-Id); NULL: a new one */
    const char **kw;    /* emit --kw K=V, in order; room for every word (main) */
    int nkw;
} cli_opts;

/* ---- conn.c */

/* Connects, or prints why not and returns NULL (exit CLI_EXIT_CONN). */
natsConnection *cli_connect(const cli_opts *o);
void cli_close(natsConnection *nc);
/* nats-server's words when it refused a publish or subscription of ours
 * for want of permission (call after a flush), else NULL. Borrowed from
 * nc. */
const char *cli_not_permitted(natsConnection *nc);

/* Prints "natsrpc: ..." on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One request: 0 and *reply (new: natsMsg_Destroy) when a reply came, else
 * prints why (no responders, timeout) and returns CLI_EXIT_RPC or
 * CLI_EXIT_CONN. */
int cli_request(natsConnection *nc, const cli_opts *o, const char *subject, const char *data,
                size_t len, natsMsg **reply);

/* Scatter-gather on subject: every reply's data parsed as JSON, appended to
 * a new array (*out). Waits up to the timeout for the first reply, then
 * until replies stop for a moment. Returns 0, or CLI_EXIT_CONN. An empty
 * array when nobody answered. */
int cli_gather(natsConnection *nc, const cli_opts *o, const char *subject, json_t **out);

/* Prints a JSON value on stdout, compact or indented, with a newline. */
void cli_print_json(json_t *v, int indent);

/* ---- table.c: columns padded to their widest cell, row 0 the header */

#define CLI_TABLE_COLS 10

typedef struct {
    int ncols; /* at most CLI_TABLE_COLS */
    size_t nrows;
    char **cells; /* nrows * ncols */
} cli_table;

void cli_table_init(cli_table *t, int ncols);
/* Adds a row of ncols strings (copied; NULL prints as ""). */
void cli_table_row(cli_table *t, const char *const *cols);
/* Prints every row, each line after indent, and empties the table. */
void cli_table_print(cli_table *t, const char *indent);

/* ---- call.c */

/* The request body from command-line words: one word that is a JSON array
 * or object is the body as it is; otherwise positional words become args
 * and --key value (or --key=value, or a bare --flag: true) become kwargs,
 * each value parsed as JSON when it parses, else taken as a string.
 * strict: a value that starts like a JSON array or object ('[', '{') must
 * parse as one (for what is stored, such as an event). Returns new text
 * (free), or NULL and prints why. */
char *cli_body_from_words(int argc, char **argv, int strict);

/* A command-line value: JSON when it parses as JSON, else the string; with
 * strict, NULL (printed) for a word that starts like a JSON array or object
 * and is not one. New. */
json_t *cli_value(const char *word, int strict);

int cli_cmd_call(const cli_opts *o, int argc, char **argv);

/* ---- services.c */
int cli_cmd_ls(const cli_opts *o, int argc, char **argv);
int cli_cmd_ping(const cli_opts *o, int argc, char **argv);
int cli_cmd_info(const cli_opts *o, int argc, char **argv);
int cli_cmd_stats(const cli_opts *o, int argc, char **argv);

/* ---- pubsub.c */
int cli_cmd_pub(const cli_opts *o, int argc, char **argv);
int cli_cmd_sub(const cli_opts *o, int argc, char **argv);

/* ---- events.c */
int cli_cmd_events_ls(const cli_opts *o, int argc, char **argv);
int cli_cmd_events_tail(const cli_opts *o, int argc, char **argv);
int cli_cmd_emit(const cli_opts *o, int argc, char **argv);

#endif /* NRPC_CLI_H */
