/* test_inbox.c: NATS_INBOX_PREFIX and the inboxes made under it (inbox.c).
 * No server: nrpc__inbox_apply only sets natsOptions. */
#include "check.h"

#include <stdint.h>
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULE                                                                                   \
    ": a prefix is dot-separated tokens of letters, digits, '_' and '-' (no wildcards, spaces " \
    "or '$')"

static void
check_refused(const char *prefix, const char *want)
{
    char why[512] = "x";

    CHECK_INT(nrpc_inbox_prefix_check(prefix, why, sizeof why), -1);
    CHECK_STR(why, want);
}

static void
test_check(void)
{
    char why[512] = "x", long_ok[NRPC_INBOX_PREFIX_MAX + 1], too_long[NRPC_INBOX_PREFIX_MAX + 2];

    CHECK_INT(nrpc_inbox_prefix_check(NULL, why, sizeof why), 0);
    CHECK_STR(why, "");
    CHECK_INT(nrpc_inbox_prefix_check("", why, sizeof why), 0);
    CHECK_INT(nrpc_inbox_prefix_check("_INBOX", why, sizeof why), 0);
    CHECK_INT(nrpc_inbox_prefix_check("_INBOX.gateway", why, sizeof why), 0);
    CHECK_INT(nrpc_inbox_prefix_check("_INBOX.thing_service.r-2.X9", why, sizeof why), 0);
    CHECK_INT(nrpc_inbox_prefix_check("_INBOX.x", NULL, 0), 0);
    CHECK_INT(nrpc_inbox_prefix_check("_INBOX.*", NULL, 0), -1);

    /* exactly the longest, and one byte more */
    memset(long_ok, 'a', sizeof long_ok);
    memcpy(long_ok, "_INBOX.", 7);
    long_ok[NRPC_INBOX_PREFIX_MAX] = '\0';
    CHECK_INT(nrpc_inbox_prefix_check(long_ok, why, sizeof why), 0);
    memset(too_long, 'a', sizeof too_long);
    memcpy(too_long, "_INBOX.", 7);
    too_long[NRPC_INBOX_PREFIX_MAX + 1] = '\0';
    check_refused(too_long, "NATS_INBOX_PREFIX '_INBOX.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is 65 "
                            "bytes long: at most 64");

    check_refused("_INBOX.*", "NATS_INBOX_PREFIX '_INBOX.*' holds '*'" RULE);
    check_refused("_INBOX.>", "NATS_INBOX_PREFIX '_INBOX.>' holds '>'" RULE);
    check_refused("_INBOX.a b", "NATS_INBOX_PREFIX '_INBOX.a b' holds the byte 0x20" RULE);
    check_refused("_INBOX.a\tb", "NATS_INBOX_PREFIX '_INBOX.a?b' holds the byte 0x09" RULE);
    check_refused("_INBOX.x\r\nPUB a 1", "NATS_INBOX_PREFIX '_INBOX.x??PUB a 1' holds the byte 0x0d" RULE);
    check_refused("_INBOX.$x", "NATS_INBOX_PREFIX '_INBOX.$x' holds '$'" RULE);
    check_refused("$SYS.x", "NATS_INBOX_PREFIX '$SYS.x' holds '$'" RULE);
    check_refused("_INBOX.\xc3\xa9", "NATS_INBOX_PREFIX '_INBOX.?""?' holds the byte 0xc3" RULE);
    check_refused("_INBOX..x", "NATS_INBOX_PREFIX '_INBOX..x' has an empty token");
    check_refused("_INBOX.", "NATS_INBOX_PREFIX '_INBOX.' has an empty token");
    check_refused(".x", "NATS_INBOX_PREFIX '.x' has an empty token");
    check_refused("_INBOXES", "NATS_INBOX_PREFIX '_INBOXES' is not under _INBOX: use _INBOX or "
                              "_INBOX.<name> (e.g. _INBOX.gateway), where the gateway never "
                              "forwards");
    check_refused("_INBOX_gateway", "NATS_INBOX_PREFIX '_INBOX_gateway' is not under _INBOX: use "
                                    "_INBOX or _INBOX.<name> (e.g. _INBOX.gateway), where the "
                                    "gateway never forwards");
    check_refused("events.x", "NATS_INBOX_PREFIX 'events.x' is not under _INBOX: use _INBOX or "
                              "_INBOX.<name> (e.g. _INBOX.gateway), where the gateway never "
                              "forwards");
    check_refused("greeting_service.hello",
                  "NATS_INBOX_PREFIX 'greeting_service.hello' is not under _INBOX: use _INBOX or "
                  "_INBOX.<name> (e.g. _INBOX.gateway), where the gateway never forwards");

    /* a message buffer too small is cut, never overrun */
    {
        char tiny[8];
        CHECK_INT(nrpc_inbox_prefix_check("_INBOX.*", tiny, sizeof tiny), -1);
        CHECK_STR(tiny, "NATS_IN");
    }
}

static int
is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[n] == '\0';
}

static void
test_new(void)
{
    char a[NRPC_INBOX_SIZE], b[NRPC_INBOX_SIZE], small[7 + NRPC_INBOX_RANDOM];

    unsetenv("NATS_INBOX_PREFIX");
    CHECK_STR(nrpc_inbox_prefix(), "_INBOX");
    CHECK_INT(nrpc_inbox_new(a, sizeof a), NRPC_OK);
    CHECK_INT(strlen(a), 7 + NRPC_INBOX_RANDOM);
    CHECK(strncmp(a, "_INBOX.", 7) == 0 && is_hex(a + 7, NRPC_INBOX_RANDOM));
    /* "_INBOX." and 32 digits need 40 bytes with the NUL */
    CHECK_INT(nrpc_inbox_new(small, sizeof small), NRPC_ERR_INVALID_ARG);
    CHECK_STR(small, "");
    CHECK_INT(nrpc_inbox_new(NULL, 10), NRPC_ERR_INVALID_ARG);

    setenv("NATS_INBOX_PREFIX", "", 1); /* set but empty counts as unset */
    CHECK_STR(nrpc_inbox_prefix(), "_INBOX");

    setenv("NATS_INBOX_PREFIX", "_INBOX.gateway", 1);
    CHECK_STR(nrpc_inbox_prefix(), "_INBOX.gateway");
    CHECK_INT(nrpc_inbox_new(a, sizeof a), NRPC_OK);
    CHECK_INT(nrpc_inbox_new(b, sizeof b), NRPC_OK);
    CHECK(strncmp(a, "_INBOX.gateway.", 15) == 0 && is_hex(a + 15, NRPC_INBOX_RANDOM));
    CHECK(strcmp(a, b) != 0);

    /* the longest prefix fits NRPC_INBOX_SIZE */
    {
        char p[NRPC_INBOX_PREFIX_MAX + 1];
        memset(p, 'z', sizeof p);
        memcpy(p, "_INBOX.", 7);
        p[NRPC_INBOX_PREFIX_MAX] = '\0';
        setenv("NATS_INBOX_PREFIX", p, 1);
        CHECK_INT(nrpc_inbox_new(a, sizeof a), NRPC_OK);
        CHECK_INT(strlen(a), NRPC_INBOX_SIZE - 1);
    }

    setenv("NATS_INBOX_PREFIX", "_INBOX.*", 1);
    CHECK(nrpc_inbox_prefix() == NULL);
    strcpy(a, "stale");
    CHECK_INT(nrpc_inbox_new(a, sizeof a), NRPC_ERR_INVALID_ARG);
    CHECK_STR(a, "");
    unsetenv("NATS_INBOX_PREFIX");
}

static void
test_apply(void)
{
    natsOptions *o = NULL;
    char err[512] = "";

    CHECK_INT(natsOptions_Create(&o), NATS_OK);
    unsetenv("NATS_INBOX_PREFIX");
    CHECK_INT(nrpc__inbox_apply(o, err, sizeof err), 0);
    setenv("NATS_INBOX_PREFIX", "_INBOX.thing_service", 1);
    CHECK_INT(nrpc__inbox_apply(o, err, sizeof err), 0);
    /* applied twice (a rebuilt connection) is the same */
    CHECK_INT(nrpc__inbox_apply(o, err, sizeof err), 0);
    setenv("NATS_INBOX_PREFIX", "_INBOX.a b", 1);
    CHECK_INT(nrpc__inbox_apply(o, err, sizeof err), -1);
    CHECK_STR(err, "NATS_INBOX_PREFIX '_INBOX.a b' holds the byte 0x20" RULE);
    unsetenv("NATS_INBOX_PREFIX");
    natsOptions_Destroy(o);
}

/* Many threads making inboxes at once: all different (each thread has its
 * own generator, seeded from the kernel). */
#define THREADS 8
#define PER_THREAD 2000
static char made[THREADS * PER_THREAD][NRPC_INBOX_SIZE];

static void *
make_many(void *arg)
{
    size_t t = (size_t)(uintptr_t)arg;

    for (size_t i = 0; i < PER_THREAD; i++)
        if (nrpc_inbox_new(made[t * PER_THREAD + i], NRPC_INBOX_SIZE) != NRPC_OK)
            made[t * PER_THREAD + i][0] = '\0';
    return NULL;
}

static int
cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_concurrent(void)
{
    pthread_t th[THREADS];
    size_t i, dup = 0, empty = 0;

    setenv("NATS_INBOX_PREFIX", "_INBOX.gateway", 1);
    for (i = 0; i < THREADS; i++)
        CHECK_INT(pthread_create(&th[i], NULL, make_many, (void *)(uintptr_t)i), 0);
    for (i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    qsort(made, THREADS * PER_THREAD, NRPC_INBOX_SIZE, cmp);
    for (i = 0; i < THREADS * PER_THREAD; i++) {
        empty += made[i][0] == '\0';
        dup += i > 0 && strcmp(made[i], made[i - 1]) == 0;
    }
    CHECK_INT(empty, 0);
    CHECK_INT(dup, 0);
    unsetenv("NATS_INBOX_PREFIX");
}

/* ---- an inbox does not tell the next one ---- */

static uint64_t
unxorshift(uint64_t y, int k)
{
    uint64_t x = y;
    for (int i = 0; i < 64 / k + 1; i++)
        x = y ^ (x >> k);
    return x;
}

static uint64_t
inverse(uint64_t c) /* of an odd c, mod 2^64 */
{
    uint64_t x = c;
    for (int i = 0; i < 6; i++)
        x *= 2 - c * x;
    return x;
}

static uint64_t
splitmix_out(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t
nibbles(const char *hex) /* 16 digits, least significant first */
{
    uint64_t v = 0;
    for (int j = 15; j >= 0; j--)
        v = v << 4 | (uint64_t)(hex[j] <= '9' ? hex[j] - '0' : hex[j] - 'a' + 10);
    return v;
}

/* A responder sees the reply subject of a call it serves. With a
 * counter-based generator (splitmix64: each output gives its state away)
 * that showed the process's next inbox, the one of a call it does not
 * serve, where a forged reply would be taken. Try exactly that attack. */
static void
test_not_predictable(void)
{
    char a[NRPC_INBOX_SIZE], b[NRPC_INBOX_SIZE], want[17];
    uint64_t z, next;

    unsetenv("NATS_INBOX_PREFIX");
    CHECK_INT(nrpc_inbox_new(a, sizeof a), NRPC_OK);
    CHECK_INT(nrpc_inbox_new(b, sizeof b), NRPC_OK);
    z = nibbles(a + 7 + 16); /* the second word of a: state s2 */
    z = unxorshift(z, 31) * inverse(0x94d049bb133111ebULL);
    z = unxorshift(z, 27) * inverse(0xbf58476d1ce4e5b9ULL);
    z = unxorshift(z, 30);
    CHECK(splitmix_out(z) == nibbles(a + 7 + 16)); /* the inversion itself is right */
    next = splitmix_out(z + 0x9e3779b97f4a7c15ULL);
    for (int j = 0; j < 16; j++, next >>= 4)
        want[j] = "0123456789abcdef"[next & 15];
    want[16] = '\0';
    CHECK(strncmp(b + 7, want, 16) != 0);
}

int
main(void)
{
    test_check();
    test_new();
    test_apply();
    test_concurrent();
    test_not_predictable();
    return check_done("inbox");
}
