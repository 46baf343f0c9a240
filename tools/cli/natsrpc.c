/*
 * natsrpc.c: the natsrpc command-line client.
 *
 *   natsrpc call greeting_service.hello Bob --last_name Ross
 *   natsrpc call greeting_service.hello '[["Bob"], {"last_name": "Ross"}]'
 *   natsrpc ls | ping [service] | info <service> | stats <service>
 *   natsrpc pub <subject> [body or words]     natsrpc sub <subject> [--count N]
 *
 * Options may stand anywhere before `--` (see "options" below). Exit
 * status: 0, 1 for an rpc error (or no such rpc, no reply in time, no
 * service), 2 for a bad command line, 3 when NATS cannot be reached.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(const cli_opts *o, int argc, char **argv);
    int words_are_args; /* call, pub: after the subject, unknown --NAME are the rpc's */
    const char *usage;
    const char *help;
} cli_command;

static const cli_command commands[] = {
    {"call", cli_cmd_call, 1, "call <service>.<method> [ARG...] [--NAME VALUE...]",
     "Calls an rpc and prints its reply [result_args, result_kwargs].\n"
     "Words become positional arguments and --NAME VALUE (or --NAME=VALUE) keyword\n"
     "arguments; each value is parsed as JSON when it parses (42, true, null, [1,2],\n"
     "\"quoted\"), else taken as a string. A single word that is a JSON array or object\n"
     "is sent as the body itself: '[[\"Bob\"], {\"last_name\": \"Ross\"}]' or '{\"name\": 1}'.\n"
     "--server, --timeout, --json and --help (-s, -t, -h) are natsrpc's own options\n"
     "wherever they stand; after `--` they too are the rpc's: `-- --timeout 3`.\n"
     "An error reply is printed on stderr (with --json its body on stdout) and the\n"
     "exit status is 1."},
    {"ls", cli_cmd_ls, 0, "ls", "Lists the services that answer $SRV.INFO: one line per instance."},
    {"ping", cli_cmd_ping, 0, "ping [service]",
     "Pings every service (or the instances of one) with $SRV.PING."},
    {"info", cli_cmd_info, 0, "info <service>",
     "Shows a service's instances and rpcs with their parameters ($SRV.INFO.<service>)."},
    {"stats", cli_cmd_stats, 0, "stats <service>",
     "Shows per-rpc statistics of each instance of a service ($SRV.STATS.<service>):\n"
     "requests, errors, average and percentile latencies, calls in flight, last error."},
    {"pub", cli_cmd_pub, 1, "pub <subject> [BODY | ARG... --NAME VALUE...]",
     "Publishes a message. Its body is built like call's: one JSON array or object\n"
     "word as it is, else [args, kwargs] from the words."},
    {"sub", cli_cmd_sub, 0, "sub <subject> [--count N] [--raw]",
     "Prints the messages on subject (wildcards allowed) until Ctrl-C, or until N\n"
     "messages with --count N. --raw prints only each message's data."},
    {NULL},
};

static void
usage(FILE *f)
{
    const cli_command *c;

    fprintf(f,
            "usage: natsrpc <command> [WORDS and OPTIONS...] [-- WORDS...]\n"
            "\n"
            "Calls natsrpc rpcs and inspects services over NATS (natsrpc %s).\n"
            "\n"
            "Commands:\n",
            NRPC_VERSION);
    for (c = commands; c->name; c++)
        fprintf(f, "  natsrpc %s\n", c->usage);
    fprintf(f, "\n"
               "Options:\n"
               "  -s, --server URL     NATS server(s), comma-separated [$NATS_URL, else "
               "nats://127.0.0.1:4222]\n"
               "  -t, --timeout SECS   how long to wait for replies [5]\n"
               "  --json               print raw JSON instead of tables and text\n"
               "  -h, --help           this help; `natsrpc <command> --help` for a command\n"
               "  --version            print the version\n"
               "\n"
               "Options may stand before the command, between its words or after them,\n"
               "and the last of a repeated one counts. After `--` every word is the\n"
               "command's: for call and pub, the rpc's arguments.\n"
               "\n"
               "Exit status: 0 ok, 1 rpc error (or no such rpc, no reply in time, no\n"
               "service), 2 bad command line, 3 NATS unreachable.\n");
}

static void
command_usage(FILE *f, const cli_command *c)
{
    fprintf(f,
            "usage: natsrpc %s\n\n%s\n\nOptions: --server URL, --timeout SECS, --json%s "
            "(see natsrpc --help).\n",
            c->usage, c->help, strcmp(c->name, "sub") == 0 ? ", --count N, --raw" : "");
}

/* ---- options ------------------------------------------------------------
 *
 * An option may stand anywhere before `--`: before the command, between its
 * words or after them. After `--` every word is the command's. For call and
 * pub, a word after the subject that is not one of these options is the
 * rpc's (--NAME VALUE, a keyword argument); `--` sends even these names to
 * the rpc. A value is the next word (or follows `=`), never a word that
 * starts with `--`. Given twice, the last one counts. */

static int
set_server(cli_opts *o, const char *v)
{
    o->server = v; /* an empty or unreachable one fails at connect: exit 3 */
    return 0;
}

static int
set_timeout(cli_opts *o, const char *v)
{
    char *end = NULL;
    double s = strtod(v, &end);

    if (end == v || *end != '\0' || !(s > 0) || s > 3600) {
        cli_err("--timeout must be seconds in (0, 3600], got '%s'", v);
        return -1;
    }
    o->timeout_ms = (int64_t)(s * 1000.0 + 0.5);
    if (o->timeout_ms < 1)
        o->timeout_ms = 1;
    return 0;
}

static int
set_json(cli_opts *o, const char *v)
{
    o->json = 1;
    return 0;
}

static int
set_count(cli_opts *o, const char *v)
{
    char *end = NULL;

    o->count = strtol(v, &end, 10);
    if (end == v || *end != '\0' || o->count <= 0) {
        cli_err("--count must be a positive integer, got '%s'", v);
        return -1;
    }
    return 0;
}

static int
set_raw(cli_opts *o, const char *v)
{
    o->raw = 1;
    return 0;
}

typedef struct {
    const char *name;  /* "--server" */
    const char *alias; /* "-s", or NULL */
    int takes_value;
    const char *only; /* the one command that takes it; NULL: all */
    int (*set)(cli_opts *o, const char *value); /* value NULL for a flag; -1: printed */
} cli_option;

static const cli_option options[] = {
    {"--server", "-s", 1, NULL, set_server},
    {"--timeout", "-t", 1, NULL, set_timeout},
    {"--json", NULL, 0, NULL, set_json},
    {"--count", NULL, 1, "sub", set_count},
    {"--raw", NULL, 0, "sub", set_raw},
    {NULL},
};

enum { OPT_WORD, OPT_TAKEN, OPT_HELP, OPT_BAD };

static const cli_option *
option_find(const char *a, size_t n)
{
    const cli_option *opt;

    for (opt = options; opt->name; opt++)
        if ((strlen(opt->name) == n && strncmp(a, opt->name, n) == 0) ||
            (opt->alias && strlen(opt->alias) == n && strncmp(a, opt->alias, n) == 0))
            return opt;
    return NULL;
}

/* Reads the option at argv[*i] into o, for cmd (NULL: not known yet, so
 * every option is accepted). rpc_words: the words now belong to an rpc, so
 * an unknown --NAME is one of them. Returns OPT_TAKEN with *i on the last
 * word used, OPT_WORD when argv[*i] is a word, OPT_HELP, or OPT_BAD
 * (printed). *taken is the option. */
static int
parse_option(cli_opts *o, const cli_command *cmd, int rpc_words, int argc, char **argv, int *i,
             const cli_option **taken)
{
    const char *a = argv[*i], *eq = strchr(a, '='), *v = NULL;
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    const cli_option *opt;

    if (a[0] != '-' || a[1] == '\0')
        return OPT_WORD;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        return OPT_HELP;
    opt = option_find(a, n);
    if (opt && opt->only && cmd && strcmp(opt->only, cmd->name) != 0)
        opt = NULL; /* not this command's: an rpc's keyword, or an error */
    if (opt == NULL) {
        if (rpc_words)
            return OPT_WORD;
        if (cmd)
            cli_err("unknown option '%s' for %s (see natsrpc %s --help)", a, cmd->name,
                    cmd->name);
        else
            cli_err("unknown option '%s' (see natsrpc --help)", a);
        return OPT_BAD;
    }
    if (!opt->takes_value && eq) {
        cli_err("option %s takes no value, got '%s'", opt->name, a);
        return OPT_BAD;
    }
    if (opt->takes_value) {
        if (eq)
            v = eq + 1;
        else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
            v = argv[++*i];
        else {
            cli_err("option %s needs a value", a);
            return OPT_BAD;
        }
    }
    *taken = opt;
    return opt->set(o, v) == 0 ? OPT_TAKEN : OPT_BAD;
}

int
main(int argc, char **argv)
{
    cli_opts o = {.server = NULL, .timeout_ms = 5000};
    const cli_command *cmd = NULL;
    const cli_option *early = NULL; /* a command's own option, before the command */
    char **words;
    int i, nwords = 0, ended = 0, r;

    nrpc_log_set_program("natsrpc");
    words = calloc((size_t)argc + 1, sizeof *words);
    if (words == NULL)
        return CLI_EXIT_CONN;
    for (i = 1; i < argc; i++) {
        const cli_option *opt = NULL;

        if (!ended && strcmp(argv[i], "--") == 0) {
            ended = 1;
            continue;
        }
        if (!ended && cmd == NULL && strcmp(argv[i], "--version") == 0) {
            printf("natsrpc %s\n", NRPC_VERSION);
            free(words);
            return CLI_EXIT_OK;
        }
        r = ended ? OPT_WORD
                  : parse_option(&o, cmd, cmd && cmd->words_are_args && nwords > 0, argc, argv,
                                 &i, &opt);
        if (r == OPT_HELP) {
            if (cmd)
                command_usage(stdout, cmd);
            else
                usage(stdout);
            free(words);
            return CLI_EXIT_OK;
        }
        if (r == OPT_BAD) {
            free(words);
            return CLI_EXIT_USAGE;
        }
        if (r == OPT_TAKEN) {
            if (cmd == NULL && opt->only)
                early = opt;
            continue;
        }
        if (cmd) {
            words[nwords++] = argv[i];
            continue;
        }
        for (cmd = commands; cmd->name && strcmp(cmd->name, argv[i]) != 0; cmd++)
            ;
        if (cmd->name == NULL) {
            cli_err("unknown command '%s' (see natsrpc --help)", argv[i]);
            free(words);
            return CLI_EXIT_USAGE;
        }
        if (early && strcmp(early->only, cmd->name) != 0) {
            cli_err("%s is an option of natsrpc %s, not of %s", early->name, early->only,
                    cmd->name);
            free(words);
            return CLI_EXIT_USAGE;
        }
    }
    if (cmd == NULL) {
        usage(stderr);
        free(words);
        return CLI_EXIT_USAGE;
    }
    r = cmd->run(&o, nwords, words);
    if (r == CLI_EXIT_USAGE)
        command_usage(stderr, cmd);
    free(words);
    return r;
}
