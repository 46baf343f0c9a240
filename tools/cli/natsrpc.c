/*
 * natsrpc.c: the natsrpc command-line client.
 *
 *   natsrpc call greeting_service.hello Bob --last_name Ross
 *   natsrpc call greeting_service.hello '[["Bob"], {"last_name": "Ross"}]'
 *   natsrpc ls | ping [service] | info <service> | stats <service>
 *   natsrpc pub <subject> [body or words]     natsrpc sub <subject> [--count N]
 *
 * Options go before the command's words (for call and pub, before the
 * subject: words after it are the rpc's arguments). Exit status: 0, 1 for an
 * rpc error (or no such rpc, no reply in time, no service), 2 for a bad
 * command line, 3 when NATS cannot be reached.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(const cli_opts *o, int argc, char **argv);
    int words_are_args; /* call, pub: words after the subject are not options */
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
            "usage: natsrpc [OPTIONS] <command> [OPTIONS] [WORDS...]\n"
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

/* Parses the option at argv[*i] into o. Returns 1 when it was one (and
 * advances *i past its value), 0 when argv[*i] is not an option, 2 for
 * --help, -1 (printed) for a bad option. */
static int
parse_option(cli_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v = NULL, *eq;
    char name[32];
    size_t n;

    if (a[0] != '-' || a[1] == '\0')
        return 0;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        return 2;
    eq = strchr(a, '=');
    n = eq ? (size_t)(eq - a) : strlen(a);
    if (n >= sizeof name)
        n = sizeof name - 1;
    memcpy(name, a, n);
    name[n] = '\0';
    if (strcmp(name, "--json") == 0 || strcmp(name, "--raw") == 0) {
        if (name[2] == 'j')
            o->json = 1;
        else
            o->raw = 1;
        (*i)++;
        return 1;
    }
    if (strcmp(name, "-s") != 0 && strcmp(name, "--server") != 0 && strcmp(name, "-t") != 0 &&
        strcmp(name, "--timeout") != 0 && strcmp(name, "--count") != 0) {
        cli_err("unknown option '%s' (see natsrpc --help)", a);
        return -1;
    }
    if (eq) {
        v = eq + 1;
        (*i)++;
    } else if (*i + 1 < argc) {
        v = argv[*i + 1];
        *i += 2;
    } else {
        cli_err("option %s needs a value", a);
        return -1;
    }
    if (name[1] == 's' || strcmp(name, "--server") == 0) {
        o->server = v;
    } else if (strcmp(name, "--count") == 0) {
        char *end = NULL;
        o->count = strtol(v, &end, 10);
        if (end == v || *end != '\0' || o->count <= 0) {
            cli_err("--count must be a positive integer, got '%s'", v);
            return -1;
        }
    } else {
        char *end = NULL;
        double s = strtod(v, &end);
        if (end == v || *end != '\0' || !(s > 0) || s > 3600) {
            cli_err("--timeout must be seconds in (0, 3600], got '%s'", v);
            return -1;
        }
        o->timeout_ms = (int64_t)(s * 1000.0 + 0.5);
        if (o->timeout_ms < 1)
            o->timeout_ms = 1;
    }
    return 1;
}

int
main(int argc, char **argv)
{
    cli_opts o = {.server = NULL, .timeout_ms = 5000};
    const cli_command *cmd = NULL;
    char **words;
    int i = 1, nwords = 0, r;

    nrpc_log_set_program("natsrpc");
    /* Options before the command. */
    while (i < argc) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("natsrpc %s\n", NRPC_VERSION);
            return CLI_EXIT_OK;
        }
        r = parse_option(&o, argc, argv, &i);
        if (r == 2) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (r < 0)
            return CLI_EXIT_USAGE;
        if (r == 0)
            break;
    }
    if (i >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (cmd = commands; cmd->name && strcmp(cmd->name, argv[i]) != 0; cmd++)
        ;
    if (cmd->name == NULL) {
        cli_err("unknown command '%s' (see natsrpc --help)", argv[i]);
        return CLI_EXIT_USAGE;
    }
    i++;

    /* The command's options and words. For call and pub the first word is
     * the subject and everything after it belongs to the rpc (but --help
     * still shows help). */
    words = calloc((size_t)argc + 1, sizeof *words);
    if (words == NULL)
        return CLI_EXIT_CONN;
    while (i < argc) {
        if (cmd->words_are_args && nwords > 0) {
            if (strcmp(argv[i], "--help") == 0) {
                command_usage(stdout, cmd);
                free(words);
                return CLI_EXIT_OK;
            }
            words[nwords++] = argv[i++];
            continue;
        }
        if (strcmp(argv[i], "--") == 0) {
            for (i++; i < argc; i++)
                words[nwords++] = argv[i];
            break;
        }
        r = parse_option(&o, argc, argv, &i);
        if (r == 2) {
            command_usage(stdout, cmd);
            free(words);
            return CLI_EXIT_OK;
        }
        if (r < 0) {
            free(words);
            return CLI_EXIT_USAGE;
        }
        if (r == 0)
            words[nwords++] = argv[i++];
    }
    r = cmd->run(&o, nwords, words);
    if (r == CLI_EXIT_USAGE)
        command_usage(stderr, cmd);
    free(words);
    return r;
}
