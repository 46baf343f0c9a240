/* test_client_subject.c: the client refuses subjects longer than
 * NRPC_MAX_SUBJECT before anything reaches NATS, and then runs no callback.
 * The client points at a loopback port where nothing listens, so it never
 * connects and nothing leaves the process. */
#include "check.h"

#include <natsrpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int callbacks;

static void
on_response(const nrpc_response *resp, void *closure)
{
    callbacks++;
}

static void
on_message(const nrpc_message *msg, void *closure)
{
    callbacks++;
}

int
main(void)
{
    nrpc_client_opts opts = {.nats_url = "nats://127.0.0.1:1", .name = "test_client_subject"};
    nrpc_client *c = NULL;
    nrpc_subscription *sub = NULL;
    char at_limit[NRPC_MAX_SUBJECT + 1], over[NRPC_MAX_SUBJECT + 2];

    memset(at_limit, 'a', NRPC_MAX_SUBJECT);
    at_limit[NRPC_MAX_SUBJECT] = '\0';
    memcpy(at_limit, "svc.", 4);
    memset(over, 'a', NRPC_MAX_SUBJECT + 1);
    over[NRPC_MAX_SUBJECT + 1] = '\0';
    memcpy(over, "svc.", 4);

    CHECK_INT(nrpc_client_create(&c, &opts), NRPC_OK);
    if (c == NULL)
        return check_done("client_subject");

    CHECK_INT(nrpc_client_request(c, over, "[]", 2, 1000, NULL, on_response, NULL),
              NRPC_ERR_INVALID_ARG);
    CHECK_INT(nrpc_client_gather(c, over, NULL, 0, 1000, on_response, on_response, NULL),
              NRPC_ERR_INVALID_ARG);
    CHECK_INT(nrpc_client_publish(c, over, "[]", 2, NULL), NRPC_ERR_INVALID_ARG);
    CHECK_INT(nrpc_client_subscribe(c, over, on_message, NULL, &sub), NRPC_ERR_INVALID_ARG);
    CHECK(sub == NULL);

    /* At the limit the subject is fine; only the missing server stops it. */
    CHECK_INT(nrpc_client_request(c, at_limit, "[]", 2, 1000, NULL, on_response, NULL),
              NRPC_ERR_STATE);
    CHECK_INT(nrpc_client_publish(c, at_limit, "[]", 2, NULL), NRPC_ERR_STATE);
    CHECK_INT(nrpc_client_subscribe(c, at_limit, on_message, NULL, &sub), NRPC_OK);
    nrpc_client_unsubscribe(sub);

    /* Expected heartbeats: the same bound on subjects; told and un-told
     * again freely; at most 1024 subjects. */
    CHECK_INT(nrpc_client_expect_heartbeats(NULL, "svc.m", 1), NRPC_ERR_INVALID_ARG);
    CHECK_INT(nrpc_client_expect_heartbeats(c, NULL, 1), NRPC_ERR_INVALID_ARG);
    CHECK_INT(nrpc_client_expect_heartbeats(c, over, 1), NRPC_ERR_INVALID_ARG);
    CHECK_INT(nrpc_client_expect_heartbeats(c, at_limit, 1), NRPC_OK);
    CHECK_INT(nrpc_client_expect_heartbeats(c, at_limit, 1), NRPC_OK);
    CHECK_INT(nrpc_client_expect_heartbeats(c, at_limit, 0), NRPC_OK);
    CHECK_INT(nrpc_client_expect_heartbeats(c, at_limit, 0), NRPC_OK);
    {
        char subject[32];
        int i;
        for (i = 0; i < 1024; i++) {
            snprintf(subject, sizeof subject, "svc.m%d", i);
            CHECK_INT(nrpc_client_expect_heartbeats(c, subject, 1), NRPC_OK);
        }
        CHECK_INT(nrpc_client_expect_heartbeats(c, "svc.one_more", 1), NRPC_ERR_NOMEM);
        CHECK_INT(nrpc_client_expect_heartbeats(c, "svc.m0", 0), NRPC_OK);
        CHECK_INT(nrpc_client_expect_heartbeats(c, "svc.one_more", 1), NRPC_OK);
    }

    nrpc_client_destroy(c);
    CHECK_INT(callbacks, 0);
    return check_done("client_subject");
}
