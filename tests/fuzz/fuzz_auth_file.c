/* fuzz_auth_file.c: the GATEWAY_AUTH file parser on random text. It either
 * loads (then describing it and freeing it must work) or fails with a
 * message; never both, never a crash or a leak. Relative jwks_file paths
 * start in a directory of this run's own, with one valid JWKS in it. */
#include "auth/auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *dir;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    dir = fuzz_auth_dir("fuzz_auth_file");
    return 0;
}

/* The file's topic rules decide every topic and prefix without a catalog:
 * a verdict, and an access in nrpc_rpc.access's form when it is known. */
static void
check_topics(const gw_auth *a)
{
    static const char *const topics[] = {"chat", "chat.room", "chat.staff", "a.b.c", "", "news"};
    size_t i;
    int prefix, op;

    for (i = 0; i < sizeof topics / sizeof *topics; i++)
        for (prefix = 0; prefix < 2; prefix++)
            for (op = 0; op < 2; op++) {
                char out[NRPC_MAX_ACCESS + 1] = "";
                gw_topic_verdict v;
                if (topics[i][0] == '\0' && !prefix)
                    continue;
                v = gw_topic_access(NULL, a, topics[i], prefix, (gw_topic_op)op, out, sizeof out);
                if (v == GW_TOPIC_KNOWN && (out[0] == '\0' || !nrpc_access_valid(out)))
                    abort();
            }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_auth *a = NULL;
    char err[512] = "", what[512];
    int rc = gw_auth_parse((const char *)data, size, dir, &a, err, sizeof err);

    if (rc == 0) {
        if (a == NULL)
            abort();
        gw_auth_describe(a, what, sizeof what);
        if (gw_auth_challenge(a, 0) == NULL)
            abort();
        check_topics(a);
        gw_auth_free(a);
    } else if (a != NULL || err[0] == '\0') {
        abort(); /* a failure always says why and returns nothing */
    }
    return 0;
}
