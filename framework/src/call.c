/* call.c: one call's life on the loop thread: decode, bind, run the
 * handler, answer exactly once, free when the last reference goes.
 *
 * The runtime holds one reference from arrival to answer; every piece of
 * pending work (a timer, an outgoing call, a query, the handler's own frame
 * while it runs) holds another. Answering sends the reply and drops the
 * runtime's reference; whatever still holds the call finds it answered and
 * gets NRPC_ERR_STATE from a second answer instead of touching freed
 * memory. */
#include "runtime.h"
#include "bind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the caller's W3C traceparent and request id, so log lines of this
 * call can be followed across processes and outgoing calls continue the
 * trace. Malformed values are ignored. */
static void
call_read_trace(nrpc_call *call, natsMsg *msg)
{
    const char *v = NULL;
    size_t i;

    if (msg == NULL)
        return;
    if (natsMsgHeader_Get(msg, NRPC_HDR_TRACEPARENT, &v) == NATS_OK && nrpc_traceparent_valid(v)) {
        memcpy(call->traceparent, v, NRPC_TRACEPARENT_LEN + 1);
        memcpy(call->trace_id, v + 3, 32);
        call->trace_id[32] = '\0';
    }
    if (natsMsgHeader_Get(msg, NRPC_HDR_REQUEST_ID, &v) == NATS_OK && v) {
        for (i = 0; v[i] && i < sizeof call->request_id - 1; i++)
            call->request_id[i] = (v[i] > 32 && v[i] < 127) ? v[i] : '_';
        call->request_id[i] = '\0';
    }
}

void
nrpc_call_log(nrpc_call *call, nrpc_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nrpc__logv(level, call && call->trace_id[0] ? call->trace_id : NULL,
               call && call->request_id[0] ? call->request_id : NULL, fmt, ap);
    va_end(ap);
}

const char *
nrpc_call_trace_id(nrpc_call *call)
{
    return call->trace_id[0] ? call->trace_id : NULL;
}

const char *
nrpc_call_request_id(nrpc_call *call)
{
    return call->request_id[0] ? call->request_id : NULL;
}

const char *
nrpc_call_idempotency_key(nrpc_call *call)
{
    const char *v = NULL;

    /* Any NATS client can send the header: only a valid key counts. */
    if (call == NULL || call->msg == NULL ||
        natsMsgHeader_Get(call->msg, NRPC_HDR_IDEMPOTENCY_KEY, &v) != NATS_OK ||
        !nrpc_idempotency_key_valid(v))
        return NULL;
    return v;
}

void
nrpc_call_trace_hop(nrpc_call *call, nrpc_trace *t)
{
    nrpc_trace_begin(t, call->traceparent[0] ? call->traceparent : NULL,
                     call->request_id[0] ? call->request_id : NULL);
}

nrpc_call *
nrpc__call_new(nrpc_service *svc, rpc_entry *rpc, natsMsg *msg, int64_t deadline_ms)
{
    nrpc_call *call = calloc(1, sizeof *call);

    if (call == NULL)
        return NULL;
    call->svc = svc;
    call->rpc = rpc;
    call->msg = msg;
    call->deadline_ms = deadline_ms;
    call->started_ns = nrpc__now_ns();
    call->refs = 1; /* the runtime's, dropped by the answer */
    call_read_trace(call, msg);
    /* Link into the live list (drain deadline answers whatever is left). */
    call->next = svc->live;
    if (svc->live)
        svc->live->prev = call;
    svc->live = call;
    return call;
}

static void call_timer_fired(uv_timer_t *t);

static void
call_free_cb(uv_handle_t *h)
{
    free(h->data);
}

static void
call_free(nrpc_call *call)
{
    json_decref(call->bound);
    json_decref(call->varargs);
    json_decref(call->varkw);
    json_decref(call->principal);
    if (call->evh)
        natsMsg_Destroy(call->msg); /* JetStream's: nats.c's own way */
    else
        nrpc__msg_destroy(call->msg);
    if (call->timer_init) {
        call->timer.data = call;
        uv_close((uv_handle_t *)&call->timer, call_free_cb);
    } else {
        free(call);
    }
}

nrpc_call *
nrpc_call_hold(nrpc_call *call)
{
    if (call)
        call->refs++;
    return call;
}

void
nrpc_call_release(nrpc_call *call)
{
    if (call == NULL)
        return;
    if (call->refs <= 0) {
        nrpc_log(NRPC_LOG_ERROR, "nrpc_call_release of a call with no references");
        abort(); /* a double release would be a use-after-free next */
    }
    if (--call->refs == 0)
        call_free(call);
}

int
nrpc_call_answered(nrpc_call *call)
{
    return call == NULL || call->answered;
}

/* Sends the answer once, then drops the runtime's reference. body is the
 * success text (code 0) or NULL. */
static nrpc_status
call_answer(nrpc_call *call, int code, const char *type, const char *message, const char *body)
{
    if (call == NULL)
        return NRPC_ERR_INVALID_ARG;
    if (call->answered)
        return NRPC_ERR_STATE;
    call->answered = 1;
    nrpc__call_hb_stop(call); /* no heartbeat after the answer */
    nrpc__stats_record(call->rpc, nrpc__now_ns() - call->started_ns, code, message);
    if (code >= 500 && code != NRPC_CODE_UNAVAILABLE && code != NRPC_CODE_TIMEOUT)
        nrpc_call_log(call, NRPC_LOG_ERROR, "%s failed: %d %s", call->rpc->subject, code, message);
    else if (code != 0)
        nrpc_call_log(call, NRPC_LOG_INFO, "%s answered %d: %s", call->rpc->subject, code,
                      message);
    else if (call->svc->access_log)
        nrpc_call_log(call, NRPC_LOG_INFO, "%s answered 200 in %.3f ms", call->rpc->subject,
                      (double)(nrpc__now_ns() - call->started_ns) / 1e6);
    if (call->evh)
        nrpc__event_answer(call, code, message);
    else
        nrpc__service_send(call->svc, call->msg, code, type, message, body);
    nrpc__service_call_done(call->svc, call);
    /* A pending timer is owed its callback: run it now, canceled. */
    if (call->timer_pending)
        uv_timer_start(&call->timer, call_timer_fired, 0, 0);
    nrpc_call_release(call);
    return NRPC_OK;
}

nrpc_status
nrpc__call_abandon(nrpc_call *call, int code, const char *type, const char *message)
{
    return call_answer(call, code, type, message, NULL);
}

void
nrpc__call_run(nrpc_call *call, const char *body, size_t len)
{
    const nrpc_rpc *rpc = call->rpc->rpc;
    char err[512], msg[640];
    json_t *args = NULL, *kwargs = NULL;
    int rc;

    if (call->deadline_ms != INT64_MAX && nrpc_now_ms() >= call->deadline_ms) {
        /* The caller has already given up: running the handler would only
         * waste work. The answer helps whoever looks at the traffic. */
        snprintf(msg, sizeof msg, "%s: the caller's deadline passed before the call started",
                 call->rpc->subject);
        call_answer(call, NRPC_CODE_TIMEOUT, NULL, msg, NULL);
        return;
    }
    rc = nrpc_request_decode(body, len, &args, &kwargs, err, sizeof err);
    if (rc == 0)
        rc = nrpc__bind(rpc->params, call->rpc->defaults, rpc->flags, args, kwargs, &call->bound,
                        &call->varargs, &call->varkw, err, sizeof err);
    json_decref(args);
    json_decref(kwargs);
    if (rc != 0) {
        snprintf(msg, sizeof msg, "%s: %s", call->rpc->subject, err);
        call_answer(call, NRPC_CODE_BAD_REQUEST, NULL, msg, NULL);
        return;
    }

    nrpc_call_hold(call); /* the handler's frame: it may answer inside */
    rpc->handler(call);
    if (!call->answered && !call->deferred) {
        snprintf(msg, sizeof msg, "%s: the handler returned without answering",
                 call->rpc->subject);
        call_answer(call, NRPC_CODE_INTERNAL, NULL, msg, NULL);
    }
    /* Still running: heartbeats if the caller asked. A call answered
     * inside its handler costs nothing more. */
    nrpc__call_hb_start(call);
    nrpc_call_release(call);
}

/* ---- arguments --------------------------------------------------------- */

/* A name the rpc does not declare is a bug in the handler: say which, loudly
 * in debug builds. */
static int
arg_declared(nrpc_call *call, const char *name)
{
    const nrpc_param *p;

    for (p = call->rpc->rpc->params; p && p->name; p++)
        if (name && strcmp(p->name, name) == 0)
            return 1;
#ifndef NDEBUG
    nrpc_log(NRPC_LOG_ERROR, "%s: the handler asked for argument '%s', which the rpc does not "
                             "declare",
             call->rpc->subject, name ? name : "(null)");
    abort();
#else
    if (!call->bad_arg_logged)
        nrpc_call_log(call, NRPC_LOG_ERROR,
                      "%s: the handler asked for argument '%s', which the rpc does not declare",
                      call->rpc->subject, name ? name : "(null)");
    call->bad_arg_logged = 1;
    return 0;
#endif
}

json_t *
nrpc_arg(nrpc_call *call, const char *name)
{
    json_t *v;

    if (call == NULL || call->bound == NULL || !arg_declared(call, name))
        return json_null();
    v = json_object_get(call->bound, name);
    return v ? v : json_null();
}

const char *
nrpc_arg_string(nrpc_call *call, const char *name)
{
    json_t *v = nrpc_arg(call, name);

    if (json_is_string(v))
        return json_string_value(v);
    /* null is a declared parameter's value only when its default is null. */
    return call && call->bound && json_object_get(call->bound, name) == v ? NULL : "";
}

double
nrpc_arg_number(nrpc_call *call, const char *name)
{
    return json_number_value(nrpc_arg(call, name));
}

json_int_t
nrpc_arg_int(nrpc_call *call, const char *name)
{
    json_t *v = nrpc_arg(call, name);
    /* NRPC_INTEGER accepts a real with no fraction. */
    return json_is_real(v) ? (json_int_t)json_real_value(v) : json_integer_value(v);
}

int
nrpc_arg_bool(nrpc_call *call, const char *name)
{
    return json_is_true(nrpc_arg(call, name));
}

json_t *
nrpc_call_varargs(nrpc_call *call)
{
    return call->varargs ? call->varargs : call->svc->empty_array;
}

json_t *
nrpc_call_varkw(nrpc_call *call)
{
    return call->varkw ? call->varkw : call->svc->empty_object;
}

const char *
nrpc_call_subject(nrpc_call *call)
{
    return call->rpc->subject;
}

nrpc_service *
nrpc_call_service(nrpc_call *call)
{
    return call->svc;
}

int64_t
nrpc_call_time_left_ms(nrpc_call *call)
{
    if (call->deadline_ms == INT64_MAX)
        return INT64_MAX;
    return call->deadline_ms - nrpc_now_ms();
}

void
nrpc_call_set_data(nrpc_call *call, void *data)
{
    call->data = data;
}

void *
nrpc_call_data(nrpc_call *call)
{
    return call->data;
}

/* ---- answers ----------------------------------------------------------- */

nrpc_status
nrpc_reply(nrpc_call *call, json_t *args, json_t *kwargs)
{
    char *text;
    nrpc_status s;

    if (call == NULL || call->answered) {
        json_decref(args);
        json_decref(kwargs);
        return call ? NRPC_ERR_STATE : NRPC_ERR_INVALID_ARG;
    }
    if ((args && !json_is_array(args)) || (kwargs && !json_is_object(kwargs))) {
        json_decref(args);
        json_decref(kwargs);
        return call_answer(call, NRPC_CODE_INTERNAL, NULL,
                           "the handler replied with args that are not an array or kwargs "
                           "that are not an object",
                           NULL);
    }
    text = nrpc_reply_encode(args, kwargs);
    if (text == NULL)
        return call_answer(call, NRPC_CODE_INTERNAL, NULL, "could not encode the reply", NULL);
    s = call_answer(call, 0, NULL, NULL, text);
    free(text);
    return s;
}

nrpc_status
nrpc_reply_value(nrpc_call *call, json_t *value)
{
    json_t *args = json_array();
    json_array_append_new(args, value ? value : json_null());
    return nrpc_reply(call, args, NULL);
}

nrpc_status
nrpc_fail(nrpc_call *call, int code, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (code < 400 || code > 599)
        code = NRPC_CODE_INTERNAL;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return call_answer(call, code, type, msg, NULL);
}

void
nrpc_call_defer(nrpc_call *call)
{
    if (call)
        call->deferred = 1;
}

static void
call_timer_fired(uv_timer_t *t)
{
    nrpc_call *call = t->data;
    nrpc_timer_cb cb = call->timer_cb;
    void *arg = call->timer_arg;

    call->timer_pending = 0;
    call->timer_cb = NULL;
    call->timer_arg = NULL;
    cb(call, call->answered ? NRPC_CODE_CANCELED : 0, arg);
    nrpc_call_release(call); /* the timer's */
}

nrpc_status
nrpc_call_after(nrpc_call *call, uint64_t ms, nrpc_timer_cb cb, void *arg)
{
    if (call == NULL || cb == NULL)
        return NRPC_ERR_INVALID_ARG;
    if (call->answered || call->timer_pending)
        return NRPC_ERR_STATE;
    if (!call->timer_init) {
        if (uv_timer_init(call->svc->loop, &call->timer) != 0)
            return NRPC_ERR_SYSTEM;
        call->timer_init = 1;
    }
    call->timer.data = call;
    if (uv_timer_start(&call->timer, call_timer_fired, ms, 0) != 0)
        return NRPC_ERR_SYSTEM;
    call->timer_cb = cb;
    call->timer_arg = arg;
    call->timer_pending = 1;
    call->deferred = 1;
    nrpc_call_hold(call);
    return NRPC_OK;
}
