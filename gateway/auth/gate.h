/*
 * gate.h: the permission check of one call, for the HTTP bridge and WAMP.
 *
 * A call of an rpc subject goes through the gate before it is sent to NATS:
 * the rpc's access comes from the loop's catalog (a subject the catalog
 * does not know yet waits for the loop's next gather, which every such call
 * shares: one gather in flight per loop, so a flood of made-up subjects
 * costs one $SRV.INFO gather at a time; still unknown, it is treated as not
 * public: credentials needed), the caller is identified from its Authorization
 * value, and gw_auth_decide says 0, 401, 403 or 503. Everything runs on the
 * loop's thread; with auth off (l->auth NULL) nothing here runs at all.
 */
#ifndef NRPC_GW_GATE_H
#define NRPC_GW_GATE_H

#include "auth.h"
#include "gateway.h"

typedef struct gw_gate gw_gate;
/* The verdict is in g (gw_gate_status...). */
typedef void (*gw_gate_cb)(gw_gate *g, void *closure);

struct gw_gate {
    gw_loop *l;
    char subject[NRPC_MAX_SUBJECT + 1];
    char *authorization; /* copy of the header value, or NULL */
    gw_gate_cb cb;
    void *closure;
    int waiting;   /* a catalog gather or an identification owes its callback */
    int inside;    /* gw_gate_start is on the stack */
    int refreshed; /* gathered once for an unknown subject */
    int known;     /* p was given (a WAMP session's): no identification */
    /* a WAMP topic rather than an rpc (gw_gate_start_topic): subject holds
     * the topic */
    int topic, prefix;
    gw_topic_op op;
    gw_topic_verdict verdict;
    char label[NRPC_MAX_SUBJECT + 32]; /* what messages name */
    /* The access, copied: an identification may outlast the loop's access
     * map (a gather replaces it, the next call lets go of the old one). */
    char access_buf[NRPC_MAX_ACCESS + 1];
    const char *access; /* access_buf, or NULL: not known */
    gw_principal p;
    /* the verdict */
    int status;        /* 0: go on; else 401, 403, 503 */
    char msg[640];     /* for the error body */
    const char *challenge; /* WWW-Authenticate of a 401 (static), else NULL */
    char *principal;   /* NRPC_HDR_PRINCIPAL value to send (new), or NULL */
};

/* Checks a call of subject (len bytes) with the Authorization value
 * authorization (NULL: none; copied). g is the caller's memory (zeroed
 * here) and must stay valid until the verdict. Returns 1 when the verdict
 * is in g now (cb not called), 0 when cb(g, closure) runs later. */
int gw_gate_start(gw_gate *g, gw_loop *l, const char *subject, size_t len,
                  const char *authorization, gw_gate_cb cb, void *closure);
/* The same for a caller already identified (a WAMP session): p is copied. */
int gw_gate_start_as(gw_gate *g, gw_loop *l, const char *subject, size_t len,
                     const gw_principal *p, gw_gate_cb cb, void *closure);
/* The same for a WAMP topic (the topic, not its subject; a prefix
 * subscription's prefix with prefix set) and op, for a caller already
 * identified: p is copied. The access comes from gw_topic_access; a topic
 * that nothing declares or rules is gathered for once, like an unknown rpc. */
int gw_gate_start_topic(gw_gate *g, gw_loop *l, const char *topic, int prefix, gw_topic_op op,
                        const gw_principal *p, gw_gate_cb cb, void *closure);
/* The verdict on op on topic for p now, from what l knows (no gather: a
 * topic nothing declares or rules gets the default): 0, or 401/403/503
 * with a message in msg. */
int gw_gate_topic_now(gw_loop *l, const char *topic, gw_topic_op op, const gw_principal *p,
                      char *msg, size_t msglen);
/* Frees what g holds (not g). */
void gw_gate_clear(gw_gate *g);


#endif /* NRPC_GW_GATE_H */
