/* call.c: one call's life on the loop thread: decode, bind, run the
 * handler, defer, answer exactly once, free. */
#include "runtime.h"
#include "bind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the caller's W3C trace id (traceparent "00-<32 hex>-<16 hex>-<2
 * hex>") and request id, so log lines of this call can be followed across
 * processes. Malformed values are ignored. */
static void
call_read_trace(nrpc_call *call, natsMsg *msg)
{
    const char *v = NULL;
    size_t i;

    if (msg == NULL)
        return;
    if (natsMsgHeader_Get(msg, NRPC_HDR_TRACEPARENT, &v) == NATS_OK && v && strlen(v) == 55 &&
        v[2] == '-' && v[35] == '-' && v[52] == '-') {
        for (i = 0; i < 32; i++) {
            char c = v[3 + i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                break;
            call->trace_id[i] = c;
        }
        call->trace_id[i == 32 ? 32 : 0] = '\0';
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
    call_read_trace(call, msg);
    /* Link into the live list (drain deadline answers whatever is left). */
    call->next = svc->live;
    if (svc->live)
        svc->live->prev = call;
    svc->live = call;
    return call;
}

static void
call_free_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Releases an answered call. Runs only when no framework frame is inside a
 * handler or callback of this call (depth == 0), so nobody can touch it
 * afterwards. */
static void
call_free(nrpc_call *call)
{
    if (call->timer_init) {
        call->timer.data = call;
        uv_close((uv_handle_t *)&call->timer, call_free_cb);
    } else {
        free(call);
    }
}

static void
call_finish(nrpc_call *call)
{
    nrpc__service_call_done(call->svc, call);
    json_decref(call->bound);
    json_decref(call->varargs);
    json_decref(call->varkw);
    natsMsg_Destroy(call->msg);
    call->bound = call->varargs = call->varkw = NULL;
    call->msg = NULL;
    call->released = 1;
    /* An outgoing call still points at us: free when its reply is in. */
    if (call->pending_out == 0)
        call_free(call);
}

void
nrpc__call_settle(nrpc_call *call)
{
    if (call->answered && !call->released && call->depth == 0)
        call_finish(call);
}

void
nrpc__call_out_done(nrpc_call *call)
{
    call->pending_out--;
    if (call->released && call->pending_out == 0)
        call_free(call);
}

/* Sends the answer once. body is the success text (code 0) or NULL. */
static nrpc_status
call_answer(nrpc_call *call, int code, const char *type, const char *message, const char *body)
{
    if (call == NULL)
        return NRPC_ERR_INVALID_ARG;
    if (call->answered)
        return NRPC_ERR_STATE;
    call->answered = 1;
    nrpc__stats_record(call->rpc, nrpc__now_ns() - call->started_ns, code, message);
    if (call->timer_init)
        uv_timer_stop(&call->timer);
    if (code >= 500 && code != NRPC_CODE_UNAVAILABLE && code != NRPC_CODE_TIMEOUT)
        nrpc_call_log(call, NRPC_LOG_ERROR, "%s failed: %d %s", call->rpc->subject, code, message);
    else if (code != 0)
        nrpc_call_log(call, NRPC_LOG_INFO, "%s answered %d: %s", call->rpc->subject, code,
                      message);
    else if (call->svc->access_log)
        nrpc_call_log(call, NRPC_LOG_INFO, "%s answered 200 in %.3f ms", call->rpc->subject,
                      (double)(nrpc__now_ns() - call->started_ns) / 1e6);
    nrpc__service_send(call->svc, call->msg, code, type, message, body);
    if (call->depth == 0)
        call_finish(call);
    return NRPC_OK;
}

void
nrpc__call_abandon(nrpc_call *call, int code, const char *type, const char *message)
{
    call->depth = 0;
    call_answer(call, code, type, message, NULL);
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

    call->depth++;
    rpc->handler(call);
    call->depth--;

    if (!call->answered && !call->deferred) {
        snprintf(msg, sizeof msg, "%s: the handler returned without answering",
                 call->rpc->subject);
        call_answer(call, NRPC_CODE_INTERNAL, NULL, msg, NULL);
    } else if (call->answered) {
        call_finish(call);
    }
}

/* ---- arguments --------------------------------------------------------- */

json_t *
nrpc_arg(nrpc_call *call, const char *name)
{
    return call && call->bound ? json_object_get(call->bound, name) : NULL;
}

const char *
nrpc_arg_string(nrpc_call *call, const char *name)
{
    return json_string_value(nrpc_arg(call, name));
}

double
nrpc_arg_number(nrpc_call *call, const char *name)
{
    return json_number_value(nrpc_arg(call, name));
}

json_int_t
nrpc_arg_int(nrpc_call *call, const char *name)
{
    return json_integer_value(nrpc_arg(call, name));
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
    call->deferred = 1;
}

static void
call_timer_fired(uv_timer_t *t)
{
    nrpc_call *call = t->data;
    nrpc_call_cb cb = call->timer_cb;

    call->timer_cb = NULL;
    call->depth++;
    cb(call);
    call->depth--;
    nrpc__call_settle(call);
}

nrpc_status
nrpc_call_after(nrpc_call *call, uint64_t ms, nrpc_call_cb cb)
{
    if (call == NULL || cb == NULL)
        return NRPC_ERR_INVALID_ARG;
    if (call->answered)
        return NRPC_ERR_STATE;
    if (!call->timer_init) {
        if (uv_timer_init(call->svc->loop, &call->timer) != 0)
            return NRPC_ERR_SYSTEM;
        call->timer_init = 1;
    }
    call->timer.data = call;
    call->timer_cb = cb;
    call->deferred = 1;
    return uv_timer_start(&call->timer, call_timer_fired, ms, 0) == 0 ? NRPC_OK : NRPC_ERR_SYSTEM;
}
