/* pubsub.c: natsrpc pub and natsrpc sub. */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cli_cmd_pub(const cli_opts *o, int argc, char **argv)
{
    natsConnection *nc;
    natsStatus s;
    const char *refused = NULL;
    char *body;

    if (argc < 1) {
        cli_err("pub: which subject?");
        return CLI_EXIT_USAGE;
    }
    body = cli_body_from_words(argc - 1, argv + 1, 0);
    if (body == NULL)
        return CLI_EXIT_USAGE;
    nc = cli_connect(o);
    if (nc == NULL) {
        free(body);
        return CLI_EXIT_CONN;
    }
    s = natsConnection_Publish(nc, argv[0], body, (int)strlen(body));
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, o->timeout_ms);
    if (s == NATS_OK && (refused = cli_not_permitted(nc)) != NULL)
        s = NATS_NOT_PERMITTED;
    if (s == NATS_OK)
        fprintf(stderr, "natsrpc: published %zu bytes on %s\n", strlen(body), argv[0]);
    else
        cli_err("publish on %s failed: %s", argv[0], refused ? refused : natsStatus_GetText(s));
    free(body);
    cli_close(nc);
    if (s == NATS_INVALID_SUBJECT)
        return CLI_EXIT_USAGE;
    if (s == NATS_NOT_PERMITTED)
        return CLI_EXIT_RPC;
    return s == NATS_OK ? CLI_EXIT_OK : CLI_EXIT_CONN;
}

static volatile sig_atomic_t sub_stop;

static void
sub_on_signal(int sig)
{
    sub_stop = 1;
}

/* Prints one message: a header line (subject, reply, headers) and its data,
 * or the data only with --raw. */
static void
sub_print(natsMsg *m, long n, int raw)
{
    const char *data = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);

    if (!raw) {
        const char **keys = NULL;
        int nkeys = 0, i;

        printf("[#%ld] Received on \"%s\"", n, natsMsg_GetSubject(m));
        if (natsMsg_GetReply(m) && *natsMsg_GetReply(m))
            printf(" with reply \"%s\"", natsMsg_GetReply(m));
        printf("\n");
        if (natsMsgHeader_Keys(m, &keys, &nkeys) == NATS_OK) {
            for (i = 0; i < nkeys; i++) {
                const char *v = NULL;
                if (natsMsgHeader_Get(m, keys[i], &v) == NATS_OK)
                    printf("%s: %s\n", keys[i], v ? v : "");
            }
            free((void *)keys);
        }
    }
    fwrite(data ? data : "", 1, (size_t)len, stdout);
    fputs(raw ? "\n" : "\n\n", stdout);
    fflush(stdout);
}

int
cli_cmd_sub(const cli_opts *o, int argc, char **argv)
{
    natsConnection *nc;
    natsSubscription *sub = NULL;
    struct sigaction sa;
    natsStatus s;
    const char *refused = NULL;
    long n = 0;

    if (argc != 1) {
        cli_err("sub: which subject? (one)");
        return CLI_EXIT_USAGE;
    }
    nc = cli_connect(o);
    if (nc == NULL)
        return CLI_EXIT_CONN;
    s = natsConnection_SubscribeSync(&sub, nc, argv[0]);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s == NATS_OK)
        s = natsConnection_Flush(nc); /* the server has the subscription */
    if (s == NATS_OK && (refused = cli_not_permitted(nc)) != NULL)
        s = NATS_NOT_PERMITTED;
    else if (s == NATS_NOT_PERMITTED)
        refused = cli_not_permitted(nc);
    if (s != NATS_OK) {
        cli_err("subscribe to %s failed: %s", argv[0], refused ? refused : natsStatus_GetText(s));
        natsSubscription_Destroy(sub);
        cli_close(nc);
        if (s == NATS_INVALID_SUBJECT)
            return CLI_EXIT_USAGE;
        return s == NATS_NOT_PERMITTED ? CLI_EXIT_RPC : CLI_EXIT_CONN;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sub_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "natsrpc: listening on %s%s\n", argv[0], o->count ? "" : " (Ctrl-C to stop)");
    while (!sub_stop && (o->count == 0 || n < o->count)) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, 200);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            if (natsConnection_IsClosed(nc) ||
                natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED) {
                cli_err("connection lost: %s", natsStatus_GetText(s));
                natsSubscription_Destroy(sub);
                cli_close(nc);
                return CLI_EXIT_CONN;
            }
            continue;
        }
        sub_print(m, ++n, o->raw);
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    cli_close(nc);
    return CLI_EXIT_OK;
}
