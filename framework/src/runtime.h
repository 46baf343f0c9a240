/* runtime.h: the service runtime's private structures, shared by service.c
 * (subscriptions, queue, loop, drain) and call.c (one call's life). */
#ifndef NRPC_RUNTIME_H
#define NRPC_RUNTIME_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

/* Latency buckets, NRPC_HIST_PER_OCTAVE to each doubling: bucket i holds
 * calls that took more than 2^((i-1)/16) and up to 2^(i/16) µs (bucket 0:
 * up to 1 µs; the last: anything longer than 2^34 µs, ~4.8 h). Read at a
 * bucket's geometric middle, a percentile is within 2.2 % of the true
 * value. */
#define NRPC_HIST_PER_OCTAVE 16
#define NRPC_HIST_BUCKETS (34 * NRPC_HIST_PER_OCTAVE + 1)

/* What $SRV.STATS reports for one rpc. Written on the loop thread (and the
 * delivery thread for refusals), read on the delivery thread: under mu. */
typedef struct {
    pthread_mutex_t mu;
    uint64_t num_requests;
    uint64_t num_errors;
    uint64_t processing_ns;
    char last_error[256];
    uint32_t hist[NRPC_HIST_BUCKETS];
    int64_t min_ns, max_ns; /* the fastest and slowest answered call */
    uint64_t refused;       /* 503 overloaded at admission */
    int in_flight;
} rpc_stats;

/* One declared rpc, resolved at start: its subject and parsed defaults. */
typedef struct {
    const nrpc_rpc *rpc;
    nrpc_service *svc;
    char *subject;    /* "<service>.<method>" */
    json_t **defaults; /* one per param, NULL = required */
    size_t nparams;
    natsSubscription *sub;
    rpc_stats stats;
} rpc_entry;

/* One declared event handler (events.c): an rpc entry whose subject is the
 * event's, plus its JetStream consumer. */
typedef struct evh_entry {
    rpc_entry e;  /* e.rpc points at rpc; e.subject "events.<service>.<event>" */
    nrpc_rpc rpc; /* the handler as an rpc: name "<service>.<event>" */
    const nrpc_event_handler *h;
    char *stream, *consumer, *deliver, *deadletter;
    natsSubscription *sub;
    int ready; /* consumer ensured and subscribed */
    /* under e.stats.mu */
    uint64_t redelivered, dead_letters, dead_letter_errors;
} evh_entry;

/* What an inbound item is. */
enum { IN_RPC, IN_REPLY, IN_EVENT, IN_PUBACK };

/* A JetStream publish acknowledgment, for the loop thread. */
typedef struct {
    int code; /* 0 stored, else 503 */
    int duplicate;
    uint64_t seq;
    char error[200];
    char id[];
} puback;

/* A request handed from the NATS delivery thread to the loop thread. */
typedef struct inbound {
    struct inbound *next;
    int kind;
    rpc_entry *rpc;      /* IN_RPC; IN_EVENT: &evh->e */
    natsMsg *msg;        /* owned; NULL for IN_PUBACK */
    int64_t deadline_ms; /* monotonic; INT64_MAX when none */
    puback *ack;         /* IN_PUBACK, owned */
} inbound;

struct nrpc_call {
    nrpc_service *svc;
    rpc_entry *rpc;
    natsMsg *msg; /* the request, owned; NULL in tests */
    json_t *bound, *varargs, *varkw;
    int64_t deadline_ms;
    int64_t started_ns; /* monotonic, for processing_time */
    char traceparent[NRPC_TRACEPARENT_LEN + 1]; /* the caller's, "" when none */
    char trace_id[33];   /* from the caller's traceparent, "" when none */
    char request_id[65]; /* from X-Request-Id, "" when none */
    void *data;
    evh_entry *evh; /* an event handler's call: answers ack, nak or dead-letter */
    int attempt;    /* events: delivery number, 1 the first time */
    uint64_t stream_seq;
    char event_id[NRPC_REQUEST_ID_MAX + 1]; /* events: Nats-Msg-Id, "" when none */
    json_t *principal; /* NRPC_HDR_PRINCIPAL, parsed on first use (access.c) */
    unsigned principal_read : 1;
    /* References: the runtime's own until the answer, plus one per piece of
     * pending work (nrpc_call_hold). The last release frees the call. */
    int refs;
    unsigned answered : 1;
    unsigned deferred : 1;
    unsigned timer_init : 1;    /* timer handle initialised: close before free */
    unsigned timer_pending : 1; /* a nrpc_call_after callback is owed */
    unsigned bad_arg_logged : 1;
    uv_timer_t timer;
    nrpc_timer_cb timer_cb;
    void *timer_arg;
    struct nrpc_call *prev, *next; /* unanswered calls, for the drain deadline */
    struct nrpc__call_hb *hb;      /* heartbeats while it runs (heartbeat.c), or NULL */
};

struct nrpc_service {
    nrpc_service_def def; /* copy; strings and tables stay the caller's */
    rpc_entry *rpcs;
    size_t nrpcs;
    void *data;
    json_t *empty_array, *empty_object; /* leftovers of rpcs without them */

    uv_loop_t *loop;
    natsConnection *nc; /* NULL in tests (nrpc_test_invoke); loop thread */
    /* Connections nats.c closed for good, replaced by a new one (on_rebuild)
     * and closed at exit. */
#define NRPC_MAX_RETIRED 64
    natsConnection *retired[NRPC_MAX_RETIRED];
    size_t nretired;
    uint64_t rebuilds;
    uv_async_t rebuild;
    uv_timer_t rebuild_timer;    /* the next attempt (backoff) */
    atomic_int rebuild_attempts; /* since a connection was last up */
    /* NATS refused one of our subscriptions (permissions): the service
     * cannot serve what it declares, so it stops (on_rebuild sees it). */
    atomic_int sub_refused;

    /* delivery thread -> loop thread */
    pthread_mutex_t qmu;
    inbound *qhead, *qtail;
    uv_async_t wake;

    /* calls accepted (queued or running) and not answered yet */
    atomic_int in_flight;
    int max_in_flight;
    nrpc_call *live;
    int access_log; /* NRPC_ACCESS_LOG: one line per answered call */

    /* discovery: the NATS service API ($SRV.PING/INFO/STATS) */
    char id[24];      /* unique per process */
    char started[64]; /* RFC 3339, UTC */
    natsSubscription *srv_subs[3];

    /* outgoing calls (outcall.c): loop thread only, but conn_gen, which
     * the disconnected hook raises on a nats.c thread (see outcall.c) */
    char inbox[NRPC_INBOX_SIZE];
    nrpc__seal seal; /* outgoing calls' reply tokens */
    int seal_ready;
    natsSubscription *inbox_sub;
    uint64_t next_token;
    nrpc_table outcalls; /* by token */
    atomic_uint_fast64_t conn_gen;
    uint64_t outcalls_gen; /* the generation outcalls were last swept for */
    nrpc_table hb_known;   /* subjects that sent heartbeats (heartbeat.c) */

    /* events (events.c): loop thread, except the counters (atomics) */
    evh_entry *evhs;
    size_t nevhs, nemits, ntopics;
    jsCtx *js; /* on nc; NULL until connected once */
    int events_ready;
    int events_attempts;
    uv_async_t events_async; /* (re)connected: check streams and consumers */
    uv_timer_t events_timer; /* set-up retries */
    uv_timer_t emit_sweep;   /* emits past NRPC_EMIT_TIMEOUT_MS */
    nrpc_table emits;        /* pending emits by hash of id */
    struct pending_emit *emit_head, *emit_tail;
    int nemitting;
    int64_t emit_timeout_ms;
    int ev_max_deliver;
    int64_t ev_backoff_ms, ev_ack_wait_ms;
    atomic_ullong emitted, emit_errors;

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
/* Answers a call from the framework (drain deadline, tests). NRPC_ERR_STATE
 * when it was answered already. */
nrpc_status nrpc__call_abandon(nrpc_call *call, int code, const char *type, const char *message);

/* service.c: 1 if s is a name of letters, digits, '_' and '-'. */
int nrpc__name_ok(const char *s);

/* service.c: a service from its definition (validated, rpcs resolved), and
 * its loop's own handles (wake-up, rebuild, signals, drain timer). */
nrpc_status nrpc__service_new(nrpc_service **out, const nrpc_service_def *def);
void nrpc__service_free(nrpc_service *svc);
int nrpc__loop_setup(nrpc_service *svc, uv_loop_t *loop);
/* Closes every handle left on loop, runs it until they are closed. */
void nrpc__loop_teardown(uv_loop_t *loop);

/* service.c: sends an answer for call (body text, code 0 = success). */
void nrpc__service_send(nrpc_service *svc, natsMsg *req, int code, const char *type,
                        const char *message, const char *body);
/* Forgets an answered call: in-flight count, live list, drain progress. */
void nrpc__service_call_done(nrpc_service *svc, nrpc_call *call);

/* service.c: hands a message to the loop thread (any thread). */
void nrpc__queue_push(nrpc_service *svc, inbound *in);

/* outcall.c */
void nrpc__outcall_reply(nrpc_service *svc, natsMsg *msg); /* loop thread; takes msg */
void nrpc__outcall_stop(nrpc_service *svc);
/* The connection was replaced: outgoing calls waiting on the old inbox get
 * 503 now, and the next one subscribes a new inbox. */
void nrpc__outcall_lost(nrpc_service *svc);
/* Loop thread: fails (503) the outgoing calls sent before the last
 * disconnect (svc->conn_gen), if any. */
void nrpc__outcall_sweep(nrpc_service *svc);

/* service.c: the deadline of a call from its Nrpc-Timeout-Ms header text:
 * INT64_MAX when the text is not a whole number or the sum would overflow. */
int64_t nrpc__deadline_from_header(const char *v, int64_t now_ms);

/* heartbeat.c: the runtime's side. After the handler returned without
 * answering: heartbeats every Nrpc-Heartbeat-Ms if the caller asked (and
 * the value is in range); nothing otherwise. Stopped by the answer. */
void nrpc__call_hb_start(nrpc_call *call);
void nrpc__call_hb_stop(nrpc_call *call);

/* events.c */
nrpc_status nrpc__events_new(nrpc_service *svc);
void nrpc__events_free(nrpc_service *svc);
void nrpc__events_loop_setup(nrpc_service *svc);
/* After (re)connecting: a jsCtx for nc, and streams, consumers and
 * subscriptions ensured (retried with backoff until they are). */
void nrpc__events_connected(nrpc_service *svc);
/* Delivery thread: the connection is up again. */
void nrpc__events_reconnected(nrpc_service *svc);
void nrpc__events_drain(nrpc_service *svc);
int nrpc__events_drained(nrpc_service *svc);
/* Unsubscribes, cancels pending emits (callbacks run) and drops the
 * jsCtx: at exit, or before a rebuild of the connection. */
void nrpc__events_stop(nrpc_service *svc, int final);
/* Loop thread: one delivered event, and one publish acknowledgment. */
void nrpc__event_run(nrpc_service *svc, evh_entry *evh, natsMsg *msg);
void nrpc__event_puback(nrpc_service *svc, puback *ack);
/* Answers an event's call: ack, nak with backoff, or dead-letter. */
void nrpc__event_answer(nrpc_call *call, int code, const char *message);
/* An event still queued at exit: back to the stream at once. */
void nrpc__event_return(natsMsg *msg);
json_t *nrpc__events_info(nrpc_service *svc, const char *what);
json_t *nrpc__events_stats(nrpc_service *svc);

/* discovery.c */
void nrpc__discovery_init(nrpc_service *svc);
nrpc_status nrpc__discovery_subscribe(nrpc_service *svc);
void nrpc__discovery_stop(nrpc_service *svc);
/* Records one answered call in its rpc's stats (code 0 = success). */
void nrpc__stats_record(rpc_entry *rpc, int64_t elapsed_ns, int code, const char *message);
void nrpc__stats_refused(rpc_entry *rpc);

#endif
