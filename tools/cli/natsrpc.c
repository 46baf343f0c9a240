/*
 * natsrpc.c: the natsrpc command-line client.
 *
 *   natsrpc call greeting_service.hello Bob --last_name Ross
 *   natsrpc call greeting_service.hello '[["Bob"], {"last_name": "Ross"}]'
 *   natsrpc ls | ping [service] | info <service> | stats <service>
 *   natsrpc pub <subject> [body or words]     natsrpc sub <subject> [--count N]
 *   natsrpc events ls | events tail <pattern>   natsrpc emit <service>.<event> [words]
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
     "exit status is 1. A call whose NATS connection drops, or whose replica stops\n"
     "sending progress heartbeats (2.5 s of silence), ends at once as error 503\n"
     "unavailable: the call may have run."},
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
    {"events ls", cli_cmd_events_ls, 0, "events ls",
     "Lists the event streams on JetStream (EVENTS_<service>): the events stored in\n"
     "each by subject, messages, bytes, first and last sequence and time; the durable\n"
     "consumers of the handling services (pending, waiting for an ack, redelivered,\n"
     "ack floor); and the dead-letter streams (DEADLETTER_<service>).\n"
     "--json prints {\"streams\": [...], \"dead_letters\": [...]} (see README.md)."},
    {"events tail", cli_cmd_events_tail, 0,
     "events tail <pattern> [--count N] [--from-start | --since DURATION | --seq N] [--raw]",
     "Prints the events whose topic matches pattern as they come: thing_service.>,\n"
     "thing_service.thing_created, *.thing_deleted (a topic s.e is the subject\n"
     "events.s.e). One line each: stream sequence, time, topic, event id, [args, kwargs];\n"
     "--json one JSON object a line, --raw the body only. By default only new events;\n"
     "--from-start, --since DURATION (90s, 15m, 2h, 1d) or --seq N (a pattern of one\n"
     "service) read the stream first. The stream is read through an ephemeral ordered\n"
     "consumer, which goes when tail ends; where no stream stores the pattern yet, new\n"
     "events are read from core NATS, without a sequence. Ends on Ctrl-C, or after N\n"
     "events with --count N."},
    {"emit", cli_cmd_emit, 1,
     "emit <service>.<event> [BODY | ARG... --NAME VALUE...] [--kw K=V...] [--id ID]",
     "Emits an event as its service does: [args, kwargs] on events.<service>.<event>,\n"
     "stored by JetStream with the id --id (else a new one) in Nats-Msg-Id. Words\n"
     "make the body as call's do, and --kw K=V adds a keyword argument (VALUE as\n"
     "JSON when it parses); a word that starts with '[' or '{' must be valid JSON.\n"
     "Prints the stream sequence it was stored at, or \"duplicate <sequence>\" when\n"
     "the stream already holds an event with this id (within its 2-minute window).\n"
     "Exit status 1 when no stream takes the subject: no service emits it yet."},
    {NULL},
};

/* "events" groups two commands: the word after it picks one. */
#define GROUP_EVENTS "events"

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
               "events and emit use JetStream (nats-server -js).\n");
    fprintf(f, "\n"
               "Options:\n"
               "  -s, --server URL     NATS server(s), comma-separated [$NATS_URL, else "
               "nats://127.0.0.1:4222]\n"
               "  -t, --timeout SECS   how long to wait for replies [5]\n"
               "  --json               print raw JSON instead of tables and text\n"
               "  -h, --help           this help; `natsrpc <command> --help` for a command\n"
               "  --version            print the version\n"
               "\n"
               "NATS credentials and TLS (environment):\n" NRPC_NATS_ENV_HELP
               "\n"
               "Options may stand before the command, between its words or after them,\n"
               "and the last of a repeated one counts. After `--` every word is the\n"
               "command's: for call and pub, the rpc's arguments.\n"
               "\n"
               "Exit status: 0 ok, 1 rpc error (or no such rpc, no reply in time, no\n"
               "service), 2 bad command line, 3 NATS unreachable.\n");
}

static void command_usage(FILE *f, const cli_command *c);

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

static int
set_from_start(cli_opts *o, const char *v)
{
    o->from = CLI_FROM_START;
    return 0;
}

/* "90", "90s", "500ms", "15m", "2h", "1d": a span up to ten years. */
static int
set_since(cli_opts *o, const char *v)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
                 {"d", 86400000}, {NULL, 0}};
    char *end = NULL;
    double n = strtod(v, &end);
    int i;

    for (i = 0; end != v && units[i].unit; i++)
        if (strcmp(end, units[i].unit) == 0 && n > 0 && n * units[i].ms <= 10 * 365 * 86400e3) {
            o->since_ms = (int64_t)(n * units[i].ms + 0.5);
            o->from = CLI_FROM_TIME;
            return 0;
        }
    cli_err("--since must be a duration such as 90s, 15m, 2h or 1d, got '%s'", v);
    return -1;
}

static int
set_seq(cli_opts *o, const char *v)
{
    int64_t n;

    if (nrpc_parse_int64(v, &n) != 0 || n <= 0) {
        cli_err("--seq must be a stream sequence (1 or more), got '%s'", v);
        return -1;
    }
    o->seq = (uint64_t)n;
    o->from = CLI_FROM_SEQ;
    return 0;
}

static int
set_id(cli_opts *o, const char *v)
{
    if (!nrpc_request_id_valid(v)) {
        cli_err("--id must be 1 to %d printable characters without spaces, got '%s'",
                NRPC_REQUEST_ID_MAX, v);
        return -1;
    }
    o->id = v;
    return 0;
}

static int
set_kw(cli_opts *o, const char *v)
{
    const char *eq = strchr(v, '=');

    if (eq == NULL || eq == v) {
        cli_err("--kw takes NAME=VALUE, got '%s'", v);
        return -1;
    }
    o->kw[o->nkw++] = v; /* main made room for every word */
    return 0;
}

typedef struct {
    const char *name;  /* "--server" */
    const char *alias; /* "-s", or NULL */
    const char *value; /* what its value is called in help ("URL"); NULL: a flag */
    /* The commands that take it, separated by '|'; NULL: all. */
    const char *only;
    int (*set)(cli_opts *o, const char *value); /* value NULL for a flag; -1: printed */
} cli_option;

static const cli_option options[] = {
    {"--server", "-s", "URL", NULL, set_server},
    {"--timeout", "-t", "SECS", NULL, set_timeout},
    {"--json", NULL, NULL, NULL, set_json},
    {"--count", NULL, "N", "sub|events tail", set_count},
    {"--raw", NULL, NULL, "sub|events tail", set_raw},
    {"--from-start", NULL, NULL, "events tail", set_from_start},
    {"--since", NULL, "DURATION", "events tail", set_since},
    {"--seq", NULL, "N", "events tail", set_seq},
    {"--kw", NULL, "K=V", "emit", set_kw},
    {"--id", NULL, "ID", "emit", set_id},
    {NULL},
};

/* 1 if opt is an option of cmd. */
static int
option_of(const cli_option *opt, const cli_command *cmd)
{
    const char *p = opt->only;
    size_t n = strlen(cmd->name);

    if (p == NULL)
        return 1;
    for (; p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
        if (strncmp(p, cmd->name, n) == 0 && (p[n] == '|' || p[n] == '\0'))
            return 1;
    return 0;
}

static void
command_usage(FILE *f, const cli_command *c)
{
    const cli_option *opt;

    fprintf(f, "usage: natsrpc %s\n\n%s\n\nOptions: --server URL, --timeout SECS, --json", c->usage,
            c->help);
    for (opt = options; opt->name; opt++)
        if (opt->only && option_of(opt, c))
            fprintf(f, ", %s%s%s", opt->name, opt->value ? " " : "", opt->value ? opt->value : "");
    fprintf(f, " (see natsrpc --help).\n");
}

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
    if (opt && cmd && !option_of(opt, cmd))
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
    if (!opt->value && eq) {
        cli_err("option %s takes no value, got '%s'", opt->name, a);
        return OPT_BAD;
    }
    if (opt->value) {
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

/* The commands of group (all when NULL), one usage line each. */
static void
group_usage(FILE *f, const char *group)
{
    const cli_command *c;
    size_t n = strlen(group);

    fprintf(f, "usage:\n");
    for (c = commands; c->name; c++)
        if (strncmp(c->name, group, n) == 0 && c->name[n] == ' ')
            fprintf(f, "  natsrpc %s\n", c->usage);
    fprintf(f, "\n`natsrpc %s <command> --help` for one of them.\n", group);
}

/* The command named word, or word after group ("events" "tail"). */
static const cli_command *
command_find(const char *group, const char *word)
{
    const cli_command *c;
    size_t n = group ? strlen(group) : 0;

    for (c = commands; c->name; c++)
        if (group ? strncmp(c->name, group, n) == 0 && c->name[n] == ' ' &&
                        strcmp(c->name + n + 1, word) == 0
                  : strcmp(c->name, word) == 0)
            return c;
    return NULL;
}

/* "--count is an option of natsrpc sub and natsrpc events tail, not of ls" */
static void
not_an_option_of(const cli_option *opt, const cli_command *cmd)
{
    char list[256] = "";
    const char *p = opt->only;
    size_t used = 0;

    while (p && *p && used < sizeof list - 1) {
        size_t n = strchr(p, '|') ? (size_t)(strchr(p, '|') - p) : strlen(p);
        int w = snprintf(list + used, sizeof list - used, "%snatsrpc %.*s", used ? " and " : "",
                         (int)n, p);
        used += w > 0 ? (size_t)w : 0;
        p = p[n] ? p + n + 1 : NULL;
    }
    cli_err("%s is an option of %s, not of %s", opt->name, list, cmd->name);
}

int
main(int argc, char **argv)
{
    cli_opts o = {.server = NULL, .timeout_ms = 5000};
    const cli_command *cmd = NULL;
    const cli_option *early = NULL; /* a command's own option, before the command */
    const char *group = NULL;       /* "events", waiting for its command's word */
    char **words;
    int i, nwords = 0, ended = 0, r = CLI_EXIT_USAGE;

    nrpc_log_set_program("natsrpc");
    words = calloc((size_t)argc + 1, sizeof *words);
    o.kw = calloc((size_t)argc + 1, sizeof *o.kw);
    if (words == NULL || o.kw == NULL) {
        r = CLI_EXIT_CONN;
        goto out;
    }
    for (i = 1; i < argc; i++) {
        const cli_option *opt = NULL;

        if (!ended && strcmp(argv[i], "--") == 0) {
            ended = 1;
            continue;
        }
        if (!ended && cmd == NULL && group == NULL && strcmp(argv[i], "--version") == 0) {
            printf("natsrpc %s\n", NRPC_VERSION);
            r = CLI_EXIT_OK;
            goto out;
        }
        r = ended ? OPT_WORD
                  : parse_option(&o, cmd, cmd && cmd->words_are_args && nwords > 0, argc, argv,
                                 &i, &opt);
        if (r == OPT_HELP) {
            if (cmd)
                command_usage(stdout, cmd);
            else if (group)
                group_usage(stdout, group);
            else
                usage(stdout);
            r = CLI_EXIT_OK;
            goto out;
        }
        if (r == OPT_BAD) {
            r = CLI_EXIT_USAGE;
            goto out;
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
        if (group == NULL && strcmp(argv[i], GROUP_EVENTS) == 0) {
            group = GROUP_EVENTS;
            continue;
        }
        cmd = command_find(group, argv[i]);
        r = CLI_EXIT_USAGE;
        if (cmd == NULL) {
            if (group)
                cli_err("unknown command '%s %s' (see natsrpc %s --help)", group, argv[i], group);
            else
                cli_err("unknown command '%s' (see natsrpc --help)", argv[i]);
            goto out;
        }
        if (early && !option_of(early, cmd)) {
            not_an_option_of(early, cmd);
            goto out;
        }
    }
    r = CLI_EXIT_USAGE;
    if (cmd == NULL) {
        if (group) {
            cli_err("%s: which command?", group);
            group_usage(stderr, group);
        } else {
            usage(stderr);
        }
        goto out;
    }
    r = cmd->run(&o, nwords, words);
    if (r == CLI_EXIT_USAGE)
        command_usage(stderr, cmd);
out:
    free(words);
    free(o.kw);
    return r;
}
