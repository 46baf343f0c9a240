/* test_invoke.c: handlers run in-process, without NATS: the greeting
 * service's rpcs and the framework's answers for misbehaving handlers. */
#include "natsrpc.h"
#include "check.h"
#include "../../services/greeting/greeting.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int
invoke(const nrpc_service_def *def, const char *method, const char *body, char **out)
{
    int code = -1;
    *out = NULL;
    CHECK_INT(nrpc_test_invoke(def, method, body, &code, out), NRPC_OK);
    return code;
}

static void
expect(const nrpc_service_def *def, const char *method, const char *body, int code,
       const char *needle)
{
    char *out;
    int got = invoke(def, method, body, &out);
    CHECK_INT(got, code);
    if (code == 0)
        CHECK_STR(out, needle);
    else
        CHECK_CONTAINS(out, needle);
    free(out);
}

/* ---- a service that misbehaves ----------------------------------------- */
static int second_answer_status = -1;
static int later_marker; /* the arg handed through a timer */

static void
no_reply(nrpc_call *call)
{
}
static void
defer_forever(nrpc_call *call)
{
    nrpc_call_defer(call);
}
static void
answer_twice(nrpc_call *call)
{
    nrpc_reply(call, NULL, NULL);
    second_answer_status = nrpc_fail(call, 500, NULL, "too late");
}
static void
bad_shape(nrpc_call *call)
{
    nrpc_reply(call, json_string("not an array"), NULL);
}
static void
later_step2(nrpc_call *call, int code, void *arg)
{
    CHECK(code == 0 && arg == NULL);
    nrpc_reply(call, json_pack("[I]", (json_int_t)nrpc_arg_int(call, "n") * 2), NULL);
}
static void
later_step1(nrpc_call *call, int code, void *arg)
{
    CHECK(code == 0 && arg == &later_marker);
    CHECK(nrpc_call_after(call, 1, later_step2, NULL) == NRPC_OK); /* re-armed from its own callback */
}
static void
later(nrpc_call *call)
{
    CHECK(nrpc_call_time_left_ms(call) == INT64_MAX);
    CHECK(nrpc_call_after(call, 5, later_step1, &later_marker) == NRPC_OK);
    /* One timer at a time: a second is refused and never calls back. */
    CHECK(nrpc_call_after(call, 1, later_step2, NULL) == NRPC_ERR_STATE);
}
static void
custom_error(nrpc_call *call)
{
    nrpc_fail(call, 503, "unavailable", "database is down");
}

/* A timer pending when the call is answered calls back once, canceled. */
static int canceled_calls, canceled_code = -1;
static void
count_timer(nrpc_call *call, int code, void *arg)
{
    canceled_calls++;
    canceled_code = code;
    CHECK(nrpc_call_answered(call));
    CHECK_INT(nrpc_reply(call, NULL, NULL), NRPC_ERR_STATE);
}
static void
answer_with_timer_pending(nrpc_call *call)
{
    CHECK_INT(nrpc_call_after(call, 10000, count_timer, NULL), NRPC_OK);
    nrpc_reply(call, NULL, NULL);
}

/* A held call outlives its answer: its arguments stay readable until the
 * last release (ASan would see a use-after-free otherwise). */
static void
hold_past_answer(nrpc_call *call)
{
    nrpc_call *held = nrpc_call_hold(call);
    nrpc_reply_value(call, json_integer(nrpc_arg_int(call, "n")));
    CHECK(nrpc_call_answered(held));
    CHECK_INT(nrpc_arg_int(held, "n"), 7);
    CHECK_INT(nrpc_fail(held, 500, NULL, "late"), NRPC_ERR_STATE);
    nrpc_call_release(held);
}

/* Asks for an argument the rpc does not declare. */
static void
typo_arg(nrpc_call *call)
{
    const char *v = nrpc_arg_string(call, "frist_name");
    nrpc_reply_value(call, json_string(v ? v : "(NULL)"));
}

static const nrpc_param n_param[] = {{"n", NRPC_INTEGER, NULL, NULL}, {NULL}};
static const nrpc_rpc odd_rpcs[] = {
    {"no_reply", no_reply, NULL, NULL, 0},
    {"defer_forever", defer_forever, NULL, NULL, 0},
    {"answer_twice", answer_twice, NULL, NULL, 0},
    {"bad_shape", bad_shape, NULL, NULL, 0},
    {"later", later, n_param, NULL, 0},
    {"custom_error", custom_error, NULL, NULL, 0},
    {"answer_with_timer_pending", answer_with_timer_pending, NULL, NULL, 0},
    {"hold_past_answer", hold_past_answer, n_param, NULL, 0},
    {"typo_arg", typo_arg, NULL, NULL, 0},
    {NULL},
};
static const nrpc_service_def odd = {.name = "odd", .rpcs = odd_rpcs};

/* An undeclared argument name: release builds answer with "" (never NULL),
 * checking builds abort naming the rpc and the name. */
static void
check_typo_arg(void)
{
#ifdef NDEBUG
    expect(&odd, "typo_arg", "", 0, "[[\"\"], {}]");
#else
    int fds[2], status = 0;
    char buf[4096];
    ssize_t n, got = 0;
    pid_t pid;

    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        char *out;
        dup2(fds[1], 2);
        close(fds[0]);
        invoke(&odd, "typo_arg", "", &out);
        _exit(0); /* not reached: the handler aborts */
    }
    close(fds[1]);
    while ((n = read(fds[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
        got += n;
    buf[got] = '\0';
    close(fds[0]);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK_CONTAINS(buf, "odd.typo_arg: the handler asked for argument 'frist_name', which the rpc "
                        "does not declare");
#endif
}

/* A service whose REST rules are wrong does not start, and says why. */
static const char *const bad_param_route[] = {"GET /odd/{nope}", NULL};
static const char *const bad_syntax_route[] = {"FETCH /odd", NULL};
static const nrpc_rpc bad_param_rpcs[] = {
    {"custom_error", custom_error, n_param, NULL, 0, bad_param_route}, {NULL}};
static const nrpc_rpc bad_syntax_rpcs[] = {
    {"custom_error", custom_error, NULL, NULL, 0, bad_syntax_route}, {NULL}};
static const nrpc_rpc good_route_rpcs[] = {
    {"later", later, n_param, NULL, 0, (const char *const[]){"GET /odd/{n}", NULL}}, {NULL}};

static void
check_bad_routes(void)
{
    nrpc_service_def bad1 = {.name = "odd", .rpcs = bad_param_rpcs};
    nrpc_service_def bad2 = {.name = "odd", .rpcs = bad_syntax_rpcs};
    nrpc_service_def good = {.name = "odd", .rpcs = good_route_rpcs};
    char *out = NULL;
    int code = -1;

    CHECK_INT(nrpc_test_invoke(&bad1, "custom_error", "", &code, &out), NRPC_ERR_INVALID_ARG);
    CHECK_INT(nrpc_test_invoke(&bad2, "custom_error", "", &code, &out), NRPC_ERR_INVALID_ARG);
    expect(&good, "later", "[[21]]", 0, "[[42], {}]");
}

int
main(void)
{
    /* greeting_service */
    expect(&greeting_service, "hello", "[[\"Bob\"], {\"last_name\": \"Ross\"}]", 0,
           "[[\"Hello, Bob Ross\"], {}]");
    expect(&greeting_service, "hello", "[[\"Awake Bob\"]]", 0, "[[\"Hello, Awake Bob\"], {}]");
    expect(&greeting_service, "hello", "[[\"Bob\", \"Ross\"]]", 0, "[[\"Hello, Bob Ross\"], {}]");
    expect(&greeting_service, "hello", "[[], {\"first_name\": \"Bob\"}]", 0,
           "[[\"Hello, Bob\"], {}]");
    expect(&greeting_service, "hello_sleep", "[[], {\"name\": \"Sleepy Bob\", \"seconds\": 0.02}]",
           0, "[[\"Hello, Sleepy Bob\"], {}]");
    expect(&greeting_service, "hello_sleep", "[[\"Bob\", 0]]", 0, "[[\"Hello, Bob\"], {}]");
    expect(&greeting_service, "hello_sleep", "[[\"Bob\", 61]]", 400, "'seconds' must be between 0 and 60");
    expect(&greeting_service, "hello_sleep", "[[\"Bob\", -1]]", 400, "'seconds'");
    expect(&greeting_service, "hello", "[]", 400,
           "greeting_service.hello: missing required argument 'first_name'");
    expect(&greeting_service, "hello", "[[1]]", 400, "\"type\": \"invalid_argument\"");
    expect(&greeting_service, "hello", "{", 400, "not valid JSON");
    expect(&greeting_service, "nope", "[]", 404, "no such rpc: greeting_service.nope");

    /* misbehaving handlers are answered, never crash */
    expect(&odd, "no_reply", "", 500, "the handler returned without answering");
    expect(&odd, "defer_forever", "", 500, "nothing is left to answer it");
    expect(&odd, "answer_twice", "", 0, "[[], {}]");
    CHECK_INT(second_answer_status, NRPC_ERR_STATE);
    expect(&odd, "bad_shape", "", 500, "not an array");
    expect(&odd, "later", "[[21]]", 0, "[[42], {}]");
    expect(&odd, "custom_error", "", 503, "{\"error\": {\"code\": 503, \"type\": \"unavailable\", "
                                          "\"message\": \"database is down\"}}");
    expect(&odd, "answer_with_timer_pending", "", 0, "[[], {}]");
    CHECK_INT(canceled_calls, 1);
    CHECK_INT(canceled_code, NRPC_CODE_CANCELED);
    expect(&odd, "hold_past_answer", "[[7]]", 0, "[[7], {}]");
    check_typo_arg();
    check_bad_routes();
    return check_done("test_invoke");
}
