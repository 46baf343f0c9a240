/* test_reply_token.c: sealed reply tokens (reply_token.c). A token opens
 * to the number it sealed, under its own key only; a token changed in any
 * digit, cut, lengthened, in capitals, or made by another key opens to
 * nothing, and the tokens of consecutive numbers share nothing a caller
 * could count on. */
#include "check.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

int
main(void)
{
    nrpc__seal a, b;
    char t[NRPC__SEALED_LEN + 1], u[NRPC__SEALED_LEN + 1], bad[NRPC__SEALED_LEN + 2];
    uint64_t n = 0, i;
    size_t k, same = 0;

    CHECK_INT(nrpc__seal_init(&a), 0);
    CHECK_INT(nrpc__seal_init(&b), 0);
    for (i = 0; i < 10000; i++) {
        uint64_t v = i < 5000 ? i : UINT64_MAX - i;
        nrpc__seal_token(&a, v, t);
        CHECK_INT(strlen(t), NRPC__SEALED_LEN);
        CHECK_INT(strspn(t, "0123456789abcdef"), NRPC__SEALED_LEN);
        n = ~v;
        CHECK_INT(nrpc__seal_open(&a, t, strlen(t), &n), 0);
        CHECK(n == v);
        CHECK_INT(nrpc__seal_open(&b, t, strlen(t), &n), -1); /* another caller's key */
    }
    /* Every digit changed, one at a time: refused. */
    nrpc__seal_token(&a, 42, t);
    for (k = 0; k < NRPC__SEALED_LEN; k++) {
        memcpy(bad, t, sizeof t);
        bad[k] = bad[k] == '0' ? '1' : '0';
        CHECK_INT(nrpc__seal_open(&a, bad, NRPC__SEALED_LEN, &n), -1);
    }
    /* Cut, longer, capitals, junk, empty. */
    CHECK_INT(nrpc__seal_open(&a, t, NRPC__SEALED_LEN - 1, &n), -1);
    snprintf(bad, sizeof bad, "%s0", t);
    CHECK_INT(nrpc__seal_open(&a, bad, NRPC__SEALED_LEN + 1, &n), -1);
    memcpy(bad, t, sizeof t);
    for (k = 0; k < NRPC__SEALED_LEN; k++)
        if (bad[k] >= 'a')
            bad[k] = (char)(bad[k] - 'a' + 'A');
    CHECK(strcmp(bad, t) == 0 || nrpc__seal_open(&a, bad, NRPC__SEALED_LEN, &n) == -1);
    CHECK_INT(nrpc__seal_open(&a, "2a", 2, &n), -1); /* the old counter form */
    CHECK_INT(nrpc__seal_open(&a, "", 0, &n), -1);
    CHECK_INT(nrpc__seal_open(&a, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", NRPC__SEALED_LEN, &n), -1);
    /* Consecutive numbers: about half their bits differ, no shared run. */
    nrpc__seal_token(&a, 1000, t);
    nrpc__seal_token(&a, 1001, u);
    for (k = 0; k < NRPC__SEALED_LEN; k++)
        same += t[k] == u[k];
    CHECK(same < 12); /* 2 expected by chance */
    return check_done("test_reply_token");
}
