/* test_stats.c: the per-rpc latency statistics behind $SRV.STATS p50/p90/p99.
 * Includes framework/src/discovery.c so its functions are tested as compiled
 * there. A percentile is checked against the exact nearest-rank value of
 * the same calls: within 2.2 %, and exact when every call took as long. */
#include "../../framework/src/discovery.c"

#include "check.h"

#define MS (1000 * 1000LL) /* ns */

/* got is within limit (relative) of want, plus the half µs that rounding
 * to the µs may add. */
#define CHECK_NEAR(got, want, limit)                                                           \
    do {                                                                                       \
        double g_ = (got), w_ = (want);                                                        \
        check_count++;                                                                         \
        if (!(fabs(g_ - w_) <= (limit) * w_ + 0.0005)) {                                       \
            fprintf(stderr, "%s:%d: %s is %.6f, expected %.6f within %.1f %%\n", __FILE__,     \
                    __LINE__, #got, g_, w_, (limit) * 100);                                    \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

static void
stats_reset(rpc_entry *e)
{
    memset(&e->stats, 0, sizeof e->stats);
    pthread_mutex_init(&e->stats.mu, NULL);
}

static double
quantile(rpc_entry *e, double q)
{
    return stats_quantile_ms(&e->stats, e->stats.num_requests - e->stats.refused, q);
}

static int
by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The case: two calls of about 10,010 ms read as 11,863 ms. */
static void
test_few_calls_are_exact(void)
{
    rpc_entry e;

    stats_reset(&e);
    CHECK(quantile(&e, 0.5) == 0); /* no calls yet */
    nrpc__stats_record(&e, 10010 * MS + 123456, 0, NULL);
    CHECK(quantile(&e, 0.50) == 10010.123);
    CHECK(quantile(&e, 0.99) == 10010.123);
    nrpc__stats_record(&e, 10010 * MS + 987654, 0, NULL);
    CHECK(quantile(&e, 0.50) >= 10010.123 && quantile(&e, 0.50) <= 10010.988);
    CHECK(quantile(&e, 0.99) == 10010.988); /* the slowest call is known exactly */

    /* A refusal is counted but never timed: the first answered call after
     * it is still the fastest. */
    stats_reset(&e);
    nrpc__stats_refused(&e);
    nrpc__stats_record(&e, 250 * MS, 0, NULL);
    nrpc__stats_record(&e, 250 * MS, 500, "boom");
    CHECK(quantile(&e, 0.50) == 250.0);
    CHECK(quantile(&e, 0.90) == 250.0);
    CHECK_INT(e.stats.num_requests, 3);
}

/* Calls from 10 µs to 100 s (log-uniform, fixed seed): every percentile
 * within 2.2 % of the exact one. */
static void
test_percentiles_within_bucket_error(void)
{
    enum { N = 5000 };
    static int64_t ns[N];
    uint64_t x = 88172645463325252ULL; /* xorshift64 */
    rpc_entry e;
    int i, q;

    stats_reset(&e);
    for (i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ns[i] = (int64_t)(1e4 * pow(10.0, 7.0 * (double)(x % 1000000) / 1e6));
        nrpc__stats_record(&e, ns[i], 0, NULL);
    }
    qsort(ns, N, sizeof ns[0], by_value);
    for (q = 1; q <= 99; q++) {
        double want = (double)ns[(int)ceil(q / 100.0 * N) - 1] / 1e6;
        CHECK_NEAR(quantile(&e, q / 100.0), want, 0.022);
    }
    CHECK_NEAR(quantile(&e, 0.999), (double)ns[(int)ceil(0.999 * N) - 1] / 1e6, 0.022);
}

/* 1 ms, 2 ms, ... 1000 ms: p50 500, p90 900, p99 990. */
static void
test_even_spread(void)
{
    rpc_entry e;
    int i;

    stats_reset(&e);
    for (i = 1000; i >= 1; i--)
        nrpc__stats_record(&e, i * MS, 0, NULL);
    CHECK_NEAR(quantile(&e, 0.50), 500, 0.022);
    CHECK_NEAR(quantile(&e, 0.90), 900, 0.022);
    CHECK_NEAR(quantile(&e, 0.99), 990, 0.022);
}

/* Beyond the last bucket (~4.7 h) the slowest call still bounds it. */
static void
test_extremes(void)
{
    rpc_entry e;

    stats_reset(&e);
    nrpc__stats_record(&e, 0, 0, NULL);
    nrpc__stats_record(&e, -5, 0, NULL); /* a clock step: counted as 0 */
    CHECK(quantile(&e, 0.99) == 0);
    stats_reset(&e);
    nrpc__stats_record(&e, 6 * 3600 * 1000 * MS, 0, NULL);
    CHECK(quantile(&e, 0.5) == 6 * 3600 * 1000.0);
}

int
main(void)
{
    test_few_calls_are_exact();
    test_percentiles_within_bucket_error();
    test_even_spread();
    test_extremes();
    return check_done("test_stats");
}
