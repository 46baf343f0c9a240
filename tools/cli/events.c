/* events.c: natsrpc events ls, events tail and emit: the events of natsrpc
 * services on JetStream, named as "Declaring events" in natsrpc.h says:
 * stream EVENTS_<s> over events.<s>.>, durable consumers <handler>__<event>,
 * dead letters in DEADLETTER_<handler>. Nothing here leaves anything on
 * the server but what emit stores: tail reads through ephemeral ordered
 * consumers, which go with it. */
#include "cli.h"
#include "internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX_LEN(p) (sizeof(p) - 1)
#define NS_PER_MS 1000000LL

/* A JetStream context on nc whose API calls wait up to --timeout; NULL
 * (printed) when it cannot be made. */
static jsCtx *
events_js(natsConnection *nc, const cli_opts *o)
{
    jsOptions jo;
    jsCtx *js = NULL;
    natsStatus s;

    jsOptions_Init(&jo);
    jo.Wait = o->timeout_ms;
    s = natsConnection_JetStream(&js, nc, &jo);

    if (s != NATS_OK) {
        cli_err("cannot use JetStream: %s", natsStatus_GetText(s));
        return NULL;
    }
    return js;
}

/* Prints why a JetStream request failed; the exit status. */
static int
js_failed(natsConnection *nc, natsStatus s, jsErrCode jerr, const char *what)
{
    if (natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED) {
        cli_err("%s: the connection to NATS was lost", what);
        return CLI_EXIT_CONN;
    }
    if (s == NATS_NO_RESPONDERS)
        cli_err("%s: JetStream does not answer (is nats-server running with -js?)", what);
    else if (s == NATS_TIMEOUT)
        cli_err("%s: no answer from JetStream in time", what);
    else
        cli_err("%s: %s (JetStream error %d)", what, natsStatus_GetText(s), (int)jerr);
    return CLI_EXIT_RPC;
}

/* "2025-01-02T03:04:05.678Z" (UTC) from nanoseconds since the epoch. */
static void
format_time(int64_t ns, char *out, size_t len)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    size_t n;

    if (gmtime_r(&t, &tm) == NULL || (n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        snprintf(out, len, "-");
        return;
    }
    snprintf(out + n, len - n, ".%03dZ", (int)(ns / NS_PER_MS % 1000));
}

static json_t *
json_time(int64_t ns)
{
    char t[48];

    format_time(ns, t, sizeof t);
    return json_string(t);
}

static int64_t
now_realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- events ls ----------------------------------------------------------- */

static int
by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
by_key(const void *a, const void *b, const char *key)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *p = json_string_value(json_object_get(x, key));
    const char *q = json_string_value(json_object_get(y, key));
    return strcmp(p ? p : "", q ? q : "");
}

static int
by_subject(const void *a, const void *b)
{
    return by_key(a, b, "subject");
}

static int
by_consumer(const void *a, const void *b)
{
    return by_key(a, b, "consumer");
}

/* Sorts the objects of array by cmp, in place. */
static void
sort_array(json_t *array, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(array), i;
    json_t **v = malloc((n ? n : 1) * sizeof *v);

    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(array, i));
    qsort(v, n, sizeof *v, cmp);
    json_array_clear(array);
    for (i = 0; i < n; i++)
        json_array_append_new(array, v[i]);
    free(v);
}

/* One stream as JSON: its state and the messages of each subject. */
static json_t *
stream_json(const jsStreamInfo *si, const char *name, size_t prefix_len)
{
    const jsStreamState *st = &si->State;
    json_t *subjects = json_array();
    int i;

    for (i = 0; st->Subjects && i < st->Subjects->Count; i++)
        json_array_append_new(subjects,
                              json_pack("{s:s, s:I}", "subject", st->Subjects->List[i].Subject,
                                        "messages", (json_int_t)st->Subjects->List[i].Msgs));
    sort_array(subjects, by_subject);
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:I, s:o, s:o}", "stream", name, "service",
                     name + prefix_len, "messages", (json_int_t)st->Msgs, "bytes",
                     (json_int_t)st->Bytes, "first_seq", (json_int_t)st->FirstSeq, "first_time",
                     st->Msgs ? json_time(st->FirstTime) : json_null(), "last_seq",
                     (json_int_t)st->LastSeq, "last_time",
                     st->Msgs ? json_time(st->LastTime) : json_null(), "subjects", subjects);
}

/* The durable consumers of a stream: the handlers of its events. */
static json_t *
consumers_json(const jsConsumerInfoList *cl)
{
    json_t *out = json_array();
    int i;

    for (i = 0; cl && i < cl->Count; i++) {
        const jsConsumerInfo *ci = cl->List[i];
        const char *durable = ci->Config ? ci->Config->Durable : NULL;
        const char *sep = durable ? strstr(durable, "__") : NULL;
        json_t *c;

        if (durable == NULL || *durable == '\0')
            continue; /* an ephemeral one: someone's tail */
        c = json_pack(
            "{s:s, s:s%, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b}", "consumer", durable, "handler",
            durable, sep ? (size_t)(sep - durable) : strlen(durable), "event", sep ? sep + 2 : "",
            "filter_subject", ci->Config->FilterSubject ? ci->Config->FilterSubject : "", "pending",
            (json_int_t)ci->NumPending, "ack_pending", (json_int_t)ci->NumAckPending, "redelivered",
            (json_int_t)ci->NumRedelivered, "delivered", (json_int_t)ci->Delivered.Stream,
            "ack_floor", (json_int_t)ci->AckFloor.Stream, "bound", ci->PushBound);
        json_array_append_new(out, c);
    }
    sort_array(out, by_consumer);
    return out;
}

/* Every EVENTS_ and DEADLETTER_ stream, with the consumers of the first.
 * Returns an exit status; *out is new on success. */
static int
events_gather(natsConnection *nc, jsCtx *js, json_t **out)
{
    jsStreamNamesList *names = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    json_t *streams = json_array(), *dead = json_array();
    char **sorted = NULL;
    natsStatus s;
    int i, n = 0, rc = CLI_EXIT_OK;

    *out = NULL;
    s = js_StreamNames(&names, js, NULL, &jerr);
    if (s == NATS_NOT_FOUND)
        s = NATS_OK; /* no streams at all */
    if (s != NATS_OK) {
        json_decref(streams);
        json_decref(dead);
        return js_failed(nc, s, jerr, "listing streams");
    }
    sorted = malloc(((names ? (size_t)names->Count : 0) + 1) * sizeof *sorted);
    for (i = 0; sorted && names && i < names->Count; i++)
        if (strncmp(names->List[i], NRPC_STREAM_PREFIX, PREFIX_LEN(NRPC_STREAM_PREFIX)) == 0 ||
            strncmp(names->List[i], NRPC_DEADLETTER_STREAM_PREFIX,
                    PREFIX_LEN(NRPC_DEADLETTER_STREAM_PREFIX)) == 0)
            sorted[n++] = names->List[i];
    if (sorted)
        qsort(sorted, (size_t)n, sizeof *sorted, by_string);
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = ">"; /* the messages of every subject */
    for (i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        int events = strncmp(sorted[i], NRPC_STREAM_PREFIX, PREFIX_LEN(NRPC_STREAM_PREFIX)) == 0;
        jsStreamInfo *si = NULL;
        jsConsumerInfoList *cl = NULL;
        json_t *st;

        s = js_GetStreamInfo(&si, js, sorted[i], &jo, &jerr);
        if (s == NATS_NOT_FOUND)
            continue; /* deleted meanwhile */
        if (s != NATS_OK) {
            rc = js_failed(nc, s, jerr, sorted[i]);
            break;
        }
        st = stream_json(si, sorted[i],
                         events ? PREFIX_LEN(NRPC_STREAM_PREFIX)
                                : PREFIX_LEN(NRPC_DEADLETTER_STREAM_PREFIX));
        jsStreamInfo_Destroy(si);
        if (events) {
            s = js_Consumers(&cl, js, sorted[i], NULL, &jerr);
            if (s != NATS_OK && s != NATS_NOT_FOUND) {
                json_decref(st);
                rc = js_failed(nc, s, jerr, sorted[i]);
                break;
            }
            json_object_set_new(st, "consumers", consumers_json(cl));
            jsConsumerInfoList_Destroy(cl);
        }
        json_array_append_new(events ? streams : dead, st);
    }
    free(sorted);
    jsStreamNamesList_Destroy(names);
    if (rc != CLI_EXIT_OK) {
        json_decref(streams);
        json_decref(dead);
        return rc;
    }
    *out = json_pack("{s:o, s:o}", "streams", streams, "dead_letters", dead);
    return CLI_EXIT_OK;
}

static const char *
jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static const char *
jint(json_t *o, const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(o, key)));
    return buf;
}

/* "12 messages, 3456 bytes, #1 2025-...Z to #12 2025-...Z" */
static void
print_stream_line(json_t *st)
{
    char m[24], b[24], f[24], l[24];

    printf("%s  %s messages, %s bytes", jstr(st, "stream"), jint(st, "messages", m, sizeof m),
           jint(st, "bytes", b, sizeof b));
    if (json_integer_value(json_object_get(st, "messages")) > 0)
        printf(", #%s %s to #%s %s", jint(st, "first_seq", f, sizeof f), jstr(st, "first_time"),
               jint(st, "last_seq", l, sizeof l), jstr(st, "last_time"));
    printf("\n");
}

static void
print_subjects(json_t *st, const char *title, size_t strip)
{
    json_t *sub;
    cli_table t;
    size_t i;
    char n[24];

    if (json_array_size(json_object_get(st, "subjects")) == 0)
        return;
    cli_table_init(&t, 2);
    cli_table_row(&t, (const char *[]){title, "MESSAGES"});
    json_array_foreach(json_object_get(st, "subjects"), i, sub)
    {
        const char *s = jstr(sub, "subject");
        cli_table_row(&t, (const char *[]){strlen(s) > strip ? s + strip : s,
                                           jint(sub, "messages", n, sizeof n)});
    }
    cli_table_print(&t, "  ");
}

static void
events_print(json_t *all)
{
    json_t *st, *c;
    cli_table t;
    size_t i, j;

    json_array_foreach(json_object_get(all, "streams"), i, st)
    {
        json_t *consumers = json_object_get(st, "consumers");

        printf("%s", i ? "\n" : "");
        print_stream_line(st);
        print_subjects(st, "EVENT", PREFIX_LEN(NRPC_EVENT_PREFIX));
        if (json_array_size(consumers) == 0) {
            printf("  no handlers\n");
            continue;
        }
        cli_table_init(&t, 7);
        cli_table_row(&t, (const char *[]){"HANDLER", "CONSUMER", "PENDING", "ACK PENDING",
                                           "REDELIVERED", "ACK FLOOR", "LISTENING"});
        json_array_foreach(consumers, j, c)
        {
            char p[24], a[24], r[24], f[24];
            cli_table_row(
                &t, (const char *[]){
                        jstr(c, "handler"), jstr(c, "consumer"), jint(c, "pending", p, sizeof p),
                        jint(c, "ack_pending", a, sizeof a), jint(c, "redelivered", r, sizeof r),
                        jint(c, "ack_floor", f, sizeof f),
                        json_is_true(json_object_get(c, "bound")) ? "yes" : "no"});
        }
        cli_table_print(&t, "  ");
    }
    json_array_foreach(json_object_get(all, "dead_letters"), i, st)
    {
        printf("\n");
        print_stream_line(st);
        print_subjects(st, "DEAD LETTERS OF", 0);
    }
}

int
cli_cmd_events_ls(const cli_opts *o, int argc, char **argv)
{
    natsConnection *nc;
    jsCtx *js;
    json_t *all = NULL;
    int rc;

    if (argc > 0) {
        cli_err("events ls takes no arguments");
        return CLI_EXIT_USAGE;
    }
    if ((nc = cli_connect(o)) == NULL)
        return CLI_EXIT_CONN;
    js = events_js(nc, o);
    rc = js ? events_gather(nc, js, &all) : CLI_EXIT_RPC;
    if (rc == CLI_EXIT_OK) {
        if (o->json)
            cli_print_json(all, 1);
        else if (json_array_size(json_object_get(all, "streams")) +
                     json_array_size(json_object_get(all, "dead_letters")) ==
                 0)
            cli_err("no event streams: no service that emits or handles events has started");
        else
            events_print(all);
    }
    json_decref(all);
    jsCtx_Destroy(js);
    cli_close(nc);
    return rc;
}

/* ---- events tail --------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    const cli_opts *o;
    long printed;
    int done; /* --count reached */
} tail_state;

static volatile sig_atomic_t tail_stop;

static void
tail_on_signal(int sig)
{
    tail_stop = 1;
}

/* Text from the wire, safe for a terminal: control bytes become spaces. */
static void
put_clean(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        putchar((unsigned char)s[i] < 32 || s[i] == 127 ? ' ' : s[i]);
}

/* One event: a line of text, a JSON object, or with --raw its body. */
static void
tail_print(const cli_opts *o, natsMsg *m)
{
    jsMsgMetaData *md = NULL;
    const char *id = NULL, *data = natsMsg_GetData(m), *topic = natsMsg_GetSubject(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    int64_t ns;
    char when[48];

    data = data ? data : "";
    if (natsMsg_GetMetaData(&md, m) != NATS_OK)
        md = NULL; /* from core NATS: no stream, no sequence */
    ns = md ? md->Timestamp : now_realtime_ns();
    if (natsMsgHeader_Get(m, NRPC_HDR_MSG_ID, &id) != NATS_OK)
        id = NULL;
    if (strncmp(topic, NRPC_EVENT_PREFIX, PREFIX_LEN(NRPC_EVENT_PREFIX)) == 0)
        topic += PREFIX_LEN(NRPC_EVENT_PREFIX);
    format_time(ns, when, sizeof when);
    if (o->raw) {
        fwrite(data, 1, len, stdout);
        putchar('\n');
    } else if (o->json) {
        json_t *body = json_loadb(data, len, JSON_DECODE_ANY, NULL);
        json_t *line =
            json_pack("{s:s?, s:o, s:s, s:s, s:s?}", "stream", md ? md->Stream : NULL, "seq",
                      md ? json_integer((json_int_t)md->Sequence.Stream) : json_null(), "time",
                      when, "topic", topic, "id", id);
        if (body)
            json_object_set_new(line, "body", body);
        else
            json_object_set_new(line, "data", json_stringn_nocheck(data, len));
        cli_print_json(line, 0);
        json_decref(line);
    } else {
        if (md)
            printf("#%" PRIu64 " ", md->Sequence.Stream);
        else
            printf("#- ");
        printf("%s %s ", when, topic);
        put_clean(id ? id : "-", id ? strlen(id) : 1);
        putchar(' ');
        put_clean(data, len);
        putchar('\n');
    }
    fflush(stdout);
    jsMsgMetaData_Destroy(md);
}

/* A subscription's thread: prints, counts, and ends at --count. */
static void
tail_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    tail_state *t = closure;

    pthread_mutex_lock(&t->mu);
    if (!t->done) {
        tail_print(t->o, m);
        t->printed++;
        t->done = t->o->count > 0 && t->printed >= t->o->count;
    }
    pthread_mutex_unlock(&t->mu);
    natsMsg_Destroy(m);
}

/* Which streams hold the pattern's events, with the filter on each: the
 * stream of the pattern's first token, or every EVENTS_ stream when it is
 * a wildcard. streams and filters are new arrays of strings. */
static int
tail_streams(natsConnection *nc, jsCtx *js, const char *pattern, json_t *streams, json_t *filters)
{
    const char *dot = strchr(pattern, '.'), *rest = dot ? dot + 1 : NULL;
    size_t first = dot ? (size_t)(dot - pattern) : strlen(pattern);
    jsStreamNamesList *names = NULL;
    jsErrCode jerr = 0;
    char name[NRPC_MAX_SUBJECT + 16], filter[NRPC_MAX_SUBJECT * 2];
    natsStatus s;
    int i;

    if (first != 1 || (pattern[0] != '*' && pattern[0] != '>')) {
        jsStreamInfo *si = NULL;

        if (rest == NULL)
            return CLI_EXIT_OK; /* "events.s" itself: in no stream */
        snprintf(name, sizeof name, NRPC_STREAM_PREFIX "%.*s", (int)first, pattern);
        s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
        jsStreamInfo_Destroy(si);
        if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
            return CLI_EXIT_OK;
        if (s != NATS_OK)
            return js_failed(nc, s, jerr, name);
        snprintf(filter, sizeof filter, NRPC_EVENT_PREFIX "%s", pattern);
        json_array_append_new(streams, json_string(name));
        json_array_append_new(filters, json_string(filter));
        return CLI_EXIT_OK;
    }
    if (pattern[0] == '*' && rest == NULL)
        return CLI_EXIT_OK; /* "events.*": in no stream */
    s = js_StreamNames(&names, js, NULL, &jerr);
    if (s == NATS_NOT_FOUND)
        return CLI_EXIT_OK;
    if (s != NATS_OK)
        return js_failed(nc, s, jerr, "listing streams");
    for (i = 0; i < names->Count; i++) {
        const char *svc = names->List[i] + PREFIX_LEN(NRPC_STREAM_PREFIX);

        if (strncmp(names->List[i], NRPC_STREAM_PREFIX, PREFIX_LEN(NRPC_STREAM_PREFIX)) != 0)
            continue;
        /* The first token is the service: each stream gets the pattern
         * with its own name there, which lies within its subjects. */
        snprintf(filter, sizeof filter, NRPC_EVENT_PREFIX "%s.%s", svc,
                 pattern[0] == '>' ? ">" : rest);
        json_array_append_new(streams, json_string(names->List[i]));
        json_array_append_new(filters, json_string(filter));
    }
    jsStreamNamesList_Destroy(names);
    return CLI_EXIT_OK;
}

static const char *
from_text(const cli_opts *o)
{
    switch (o->from) {
    case CLI_FROM_START: return "--from-start";
    case CLI_FROM_TIME: return "--since";
    case CLI_FROM_SEQ: return "--seq";
    default: return "";
    }
}

int
cli_cmd_events_tail(const cli_opts *o, int argc, char **argv)
{
    char subject[NRPC_MAX_SUBJECT + 1];
    tail_state t = {.o = o};
    natsConnection *nc = NULL;
    natsSubscription **subs = NULL;
    json_t *streams = json_array(), *filters = json_array();
    struct sigaction sa;
    jsCtx *js = NULL;
    size_t i, nsubs = 0;
    int rc;

    if (argc != 1) {
        cli_err("events tail: which topic pattern? (one, such as thing_service.>)");
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (nrpc__topic_pattern_subject(argv[0], subject, sizeof subject) != 0) {
        cli_err("events tail: '%.80s%s' is not a topic pattern: tokens of letters, digits, '_' "
                "and '-' separated by dots, '*' for one whole token, '>' for the rest, at most "
                "%zu bytes",
                argv[0], strlen(argv[0]) > 80 ? "..." : "",
                (size_t)NRPC_MAX_SUBJECT - PREFIX_LEN(NRPC_EVENT_PREFIX));
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (o->from == CLI_FROM_SEQ && (argv[0][0] == '*' || argv[0][0] == '>')) {
        cli_err("events tail: --seq is a sequence of one stream: the pattern must name its "
                "service (thing_service.>, not %s)",
                argv[0]);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if ((nc = cli_connect(o)) == NULL) {
        rc = CLI_EXIT_CONN;
        goto out;
    }
    if ((js = events_js(nc, o)) == NULL) {
        rc = CLI_EXIT_RPC;
        goto out;
    }
    rc = tail_streams(nc, js, argv[0], streams, filters);
    if (rc != CLI_EXIT_OK)
        goto out;
    if (json_array_size(streams) == 0 && o->from != CLI_FROM_NEW) {
        cli_err("events tail %s: no stream stores %s: no service emits these events yet",
                from_text(o), subject);
        rc = CLI_EXIT_RPC;
        goto out;
    }
    pthread_mutex_init(&t.mu, NULL);
    subs = calloc(json_array_size(streams) + 1, sizeof *subs);
    if (subs == NULL) {
        rc = CLI_EXIT_CONN;
        goto out_mu;
    }
    if (json_array_size(streams) == 0) {
        /* Nothing stores them yet: the live ones from core NATS. */
        natsStatus s = natsConnection_Subscribe(&subs[0], nc, subject, tail_on_msg, &t);
        if (s == NATS_OK)
            s = natsConnection_Flush(nc);
        if (s != NATS_OK) {
            cli_err("subscribe to %s failed: %s", subject, natsStatus_GetText(s));
            rc = CLI_EXIT_CONN;
            goto out_subs;
        }
        nsubs = 1;
        fprintf(stderr, "natsrpc: no stream stores %s yet; new events from core NATS\n", subject);
    }
    for (i = 0; i < json_array_size(streams); i++) {
        const char *stream = json_string_value(json_array_get(streams, i));
        const char *filter = json_string_value(json_array_get(filters, i));
        jsSubOptions so;
        jsErrCode jerr = 0;
        natsStatus s;

        jsSubOptions_Init(&so);
        so.Stream = stream;
        so.Ordered = true; /* ephemeral, no acks: gone when we unsubscribe */
        so.Config.Description = "natsrpc events tail";
        switch (o->from) {
        case CLI_FROM_START: so.Config.DeliverPolicy = js_DeliverAll; break;
        case CLI_FROM_TIME:
            so.Config.DeliverPolicy = js_DeliverByStartTime;
            so.Config.OptStartTime = now_realtime_ns() - o->since_ms * NS_PER_MS;
            break;
        case CLI_FROM_SEQ:
            so.Config.DeliverPolicy = js_DeliverByStartSequence;
            so.Config.OptStartSeq = o->seq;
            break;
        default: so.Config.DeliverPolicy = js_DeliverNew;
        }
        s = js_Subscribe(&subs[nsubs], js, filter, tail_on_msg, &t, NULL, &so, &jerr);
        if (s != NATS_OK) {
            rc = js_failed(nc, s, jerr, stream);
            goto out_subs;
        }
        nsubs++;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tail_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "natsrpc: tailing %s%s\n", subject, o->count ? "" : " (Ctrl-C to stop)");
    for (;;) {
        int done;

        pthread_mutex_lock(&t.mu);
        done = t.done;
        pthread_mutex_unlock(&t.mu);
        if (done || tail_stop)
            break;
        if (natsConnection_IsClosed(nc)) {
            cli_err("connection to NATS lost");
            rc = CLI_EXIT_CONN;
            break;
        }
        nats_Sleep(50);
    }
out_subs:
    /* Unsubscribing deletes each ordered consumer on the server. */
    for (i = 0; i < nsubs; i++) {
        natsSubscription_Unsubscribe(subs[i]);
        natsSubscription_Destroy(subs[i]);
    }
    free(subs);
out_mu:
    pthread_mutex_destroy(&t.mu);
out:
    json_decref(streams);
    json_decref(filters);
    jsCtx_Destroy(js);
    if (nc)
        cli_close(nc);
    return rc;
}

/* ---- emit ---------------------------------------------------------------- */

/* The event body from the words and --kw: [args, kwargs], new text, or
 * NULL (printed). A whole-body word must be [args], [args, kwargs] or
 * {kwargs}. */
static char *
emit_body(const cli_opts *o, int argc, char **argv)
{
    char *text = cli_body_from_words(argc, argv, 1);
    json_t *body = text ? json_loads(text, 0, NULL) : NULL, *args = NULL, *kwargs = NULL;
    int i;

    free(text);
    if (body == NULL)
        return NULL;
    if (json_is_object(body)) {
        args = json_array();
        kwargs = json_incref(body);
    } else if (json_is_array(body) && json_array_size(body) >= 1 && json_array_size(body) <= 2 &&
               json_is_array(json_array_get(body, 0)) &&
               (json_array_size(body) == 1 || json_is_object(json_array_get(body, 1)))) {
        args = json_incref(json_array_get(body, 0));
        kwargs = json_array_size(body) == 2 ? json_incref(json_array_get(body, 1)) : json_object();
    }
    json_decref(body);
    if (args == NULL) {
        cli_err("emit: an event's body is [args, kwargs], [args] or {kwargs}");
        return NULL;
    }
    /* --kw adds to the keyword arguments (copies: the body's may be shared). */
    if (o->nkw > 0) {
        json_t *copy = json_deep_copy(kwargs);
        json_decref(kwargs);
        kwargs = copy;
    }
    for (i = 0; i < o->nkw; i++) {
        const char *eq = strchr(o->kw[i], '=');
        char *key = strndup(o->kw[i], (size_t)(eq - o->kw[i]));
        json_t *value = key ? cli_value(eq + 1, 1) : NULL;

        if (value && json_object_get(kwargs, key) != NULL) {
            cli_err("keyword argument '%s' given twice", key);
            json_decref(value);
            value = NULL;
        }
        if (value == NULL) {
            free(key);
            json_decref(args);
            json_decref(kwargs);
            return NULL;
        }
        json_object_set_new(kwargs, key, value);
        free(key);
    }
    return nrpc_reply_encode(args, kwargs); /* steals both */
}

int
cli_cmd_emit(const cli_opts *o, int argc, char **argv)
{
    char subject[NRPC_MAX_SUBJECT + 1], id[NRPC_EVENT_ID_LEN + 1];
    const char *eid, *dot = argc > 0 ? strchr(argv[0], '.') : NULL;
    natsConnection *nc = NULL;
    jsPubAck *pa = NULL;
    jsPubOptions po;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;
    jsCtx *js = NULL;
    natsStatus s;
    char *body;
    int rc = CLI_EXIT_OK;

    if (argc < 1) {
        cli_err("emit: which event? (<service>.<event>)");
        return CLI_EXIT_USAGE;
    }
    /* An event is an rpc-shaped name, "<service>.<event>", in the events space. */
    if (!nrpc_subject_is_rpc(argv[0], strlen(argv[0])) ||
        nrpc_topic_subject(argv[0], subject, sizeof subject) != 0) {
        cli_err("emit: '%.80s%s' is not an event: <service>.<event>, each of letters, digits, "
                "'_' and '-'",
                argv[0], strlen(argv[0]) > 80 ? "..." : "");
        return CLI_EXIT_USAGE;
    }
    body = emit_body(o, argc - 1, argv + 1);
    if (body == NULL)
        return CLI_EXIT_USAGE;
    nrpc__event_new_id(id);
    eid = o->id ? o->id : id;
    if ((nc = cli_connect(o)) == NULL) {
        free(body);
        return CLI_EXIT_CONN;
    }
    if ((js = events_js(nc, o)) == NULL) {
        rc = CLI_EXIT_RPC;
        goto out;
    }
    /* As events.c's emit: the body, and the id in Nats-Msg-Id. */
    s = natsMsg_Create(&m, subject, NULL, body, (int)strlen(body));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, NRPC_HDR_MSG_ID, eid);
    jsPubOptions_Init(&po);
    po.MaxWait = o->timeout_ms;
    if (s == NATS_OK)
        s = js_PublishMsg(&pa, js, m, &po, &jerr);
    if (s == NATS_OK) {
        if (o->json) {
            json_t *r =
                json_pack("{s:s, s:s, s:I, s:b, s:s}", "subject", subject, "stream", pa->Stream,
                          "seq", (json_int_t)pa->Sequence, "duplicate", pa->Duplicate, "id", eid);
            cli_print_json(r, 0);
            json_decref(r);
        } else {
            printf("%s%" PRIu64 "\n", pa->Duplicate ? "duplicate " : "", pa->Sequence);
        }
        fprintf(stderr, "natsrpc: %s %s in %s at sequence %" PRIu64 " (id %s)\n",
                pa->Duplicate ? "already stored:" : "stored", subject, pa->Stream, pa->Sequence,
                eid);
    } else if (s == NATS_NO_RESPONDERS) {
        cli_err("emit: no stream takes %s: no service emits %.*s's events yet (its "
                "stream " NRPC_STREAM_PREFIX
                "%.*s is made when one starts), or nats-server runs without -js",
                subject, (int)(dot - argv[0]), argv[0], (int)(dot - argv[0]), argv[0]);
        rc = CLI_EXIT_RPC;
    } else {
        rc = js_failed(nc, s, jerr, "emit");
    }
out:
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(body);
    jsCtx_Destroy(js);
    cli_close(nc);
    return rc;
}
