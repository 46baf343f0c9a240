/* js_publisher.c: the baseline of bench/events, nats.c's JetStream publish
 * with nothing of natsrpc around it: n messages of size bytes published
 * with js_PublishAsync (each with a Nats-Msg-Id, as natsrpc's emits) on
 * <subject>, until every acknowledgment is in. Prints the seconds taken.
 *
 *   js_publisher <nats url> <subject> <n> <size>
 *
 * The stream taking <subject> must exist. The connection takes the NATS
 * credentials and TLS settings of natsrpc (nrpc__nats_creds_apply), and
 * nothing else of it. */
#include <nats/nats.h>

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsPubOptions po;
    natsStatus s;
    char *body, id[32];
    int n, size, i;
    double t0;
    long long t0_ns;

    if (argc != 5) {
        fprintf(stderr, "usage: js_publisher <nats url> <subject> <n> <size>\n");
        return 2;
    }
    n = atoi(argv[3]);
    size = atoi(argv[4]);
    body = malloc((size_t)size + 1);
    memset(body, 'x', (size_t)size);
    {
        natsOptions *o = NULL;
        char what[512], err[512];

        s = natsOptions_Create(&o);
        if (s == NATS_OK)
            s = natsOptions_SetURL(o, argv[1]);
        if (s == NATS_OK &&
            nrpc__nats_creds_apply(o, argv[1], what, sizeof what, err, sizeof err) != 0) {
            fprintf(stderr, "js_publisher: %s\n", err);
            return 2;
        }
        if (s == NATS_OK)
            s = natsConnection_Connect(&nc, o);
        natsOptions_Destroy(o);
    }
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 65536;
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &jo);
    t0 = now_s();
    t0_ns = (long long)(t0 * 1e9);
    for (i = 0; s == NATS_OK && i < n; i++) {
        jsPubOptions_Init(&po);
        snprintf(id, sizeof id, "raw-%lx-%d", (unsigned long)t0_ns, i); /* new each run */
        po.MsgId = id;
        s = js_PublishAsync(js, argv[2], body, size, &po);
    }
    if (s == NATS_OK) {
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        s = js_PublishAsyncComplete(js, &po);
    }
    if (s != NATS_OK) {
        fprintf(stderr, "js_publisher: %s\n", natsStatus_GetText(s));
        return 1;
    }
    printf("%.6f\n", now_s() - t0);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(body);
    return 0;
}
