/* runtime.h: the service runtime's private structures, shared by service.c
 * (subscriptions, queue, loop, drain) and call.c (one call's life). */
#ifndef NRPC_RUNTIME_H
#define NRPC_RUNTIME_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

/* One declared rpc, resolved at start: its subject and parsed defaults. */
typedef struct {
    const nrpc_rpc *rpc;
    nrpc_service *svc;
    char *subject;    /* "<service>.<method>" */
    json_t **defaults; /* one per param, NULL = required */
    size_t nparams;
    natsSubscription *sub;
} rpc_entry;

/* A request handed from the NATS delivery thread to the loop thread. */
typedef struct inbound {
    struct inbound *next;
    rpc_entry *rpc;
    natsMsg *msg;        /* owned */
    int64_t deadline_ms; /* monotonic; INT64_MAX when none */
} inbound;

struct nrpc_call {
    nrpc_service *svc;
    rpc_entry *rpc;
    natsMsg *msg; /* the request, owned; NULL in tests */
    json_t *bound, *varargs, *varkw;
    int64_t deadline_ms;
    int64_t started_ms;
    void *data;
    uv_timer_t timer;
    nrpc_call_cb timer_cb;
    unsigned timer_init : 1; /* timer handle initialised: close before free */
    unsigned deferred : 1;
    unsigned answered : 1;
    int depth; /* > 0 while framework code is calling into the handler */
    struct nrpc_call *prev, *next; /* live calls, for the drain deadline */
};

struct nrpc_service {
    nrpc_service_def def; /* copy; strings and tables stay the caller's */
    rpc_entry *rpcs;
    size_t nrpcs;
    void *data;

    uv_loop_t *loop;
    natsConnection *nc; /* NULL in tests (nrpc_test_invoke) */

    /* delivery thread -> loop thread */
    pthread_mutex_t qmu;
    inbound *qhead, *qtail;
    uv_async_t wake;

    /* calls accepted (queued or running) and not answered yet */
    atomic_int in_flight;
    int max_in_flight;
    nrpc_call *live;

    /* shutdown */
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer;
    int draining;
    int64_t drain_deadline_ms;
    int exit_code;

    /* tests: the captured answer of nrpc_test_invoke */
    int test_code;
    char *test_body;
    int test_done;
};

/* call.c */
nrpc_call *nrpc__call_new(nrpc_service *svc, rpc_entry *rpc, natsMsg *msg, int64_t deadline_ms);
/* Decodes, binds and runs the handler of a new call; answers it on error. */
void nrpc__call_run(nrpc_call *call, const char *body, size_t len);
/* Answers a call from the framework (drain deadline); keeps it allocated. */
void nrpc__call_abandon(nrpc_call *call, int code, const char *type, const char *message);

/* service.c: sends an answer for call (body text, code 0 = success). */
void nrpc__service_send(nrpc_service *svc, natsMsg *req, int code, const char *type,
                        const char *message, const char *body);
/* Forgets an answered call: in-flight count, live list, drain progress. */
void nrpc__service_call_done(nrpc_service *svc, nrpc_call *call);

#endif
