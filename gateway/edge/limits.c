/*
 * limits.c: what one client address may hold, across every gateway loop,
 * and the body bytes the whole gateway holds.
 *
 * The kernel spreads one client's connections over the loops
 * (SO_REUSEPORT hashes each connection's ports), so a cap per loop would
 * be GATEWAY_THREADS times too loose and a rate per loop uneven. The
 * counters are therefore shared: one table of addresses (nrpc_table) under
 * one mutex, taken once per connection open and close and once per
 * request, for a few dozen nanoseconds. The body budget is one atomic
 * counter.
 *
 * Rate: a token bucket per address, refilled at cfg->rate tokens a second
 * up to cfg->rate_burst; a request takes one. An address stays in the
 * table while it has connections, and afterwards until its bucket would
 * be full again (gw_limits_sweep): forgetting it sooner would hand a
 * client that reconnects for every request a full bucket each time.
 */
#include "edge.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_addr {
    nrpc_tnode node; /* first: in limits_table, keyed by nrpc_hash_bytes(key) */
    uint8_t key[16];
    unsigned conns;   /* open connections */
    gw_bucket bucket; /* requests */
};

static pthread_mutex_t limits_mu = PTHREAD_MUTEX_INITIALIZER;
static nrpc_table limits_table; /* gw_addr by key */
static atomic_size_t body_held;

int
gw_addr_key(const struct sockaddr *sa, uint8_t key[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(key, 0, 16);
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(key, mapped, 12);
        memcpy(key + 12, &in->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = in6->sin6_addr.s6_addr;
        if (memcmp(b, mapped, 12) == 0)
            memcpy(key, b, 16); /* an IPv4 client of a dual-stack socket */
        else
            memcpy(key, b, 8); /* its /64 */
        return 0;
    }
    return -1;
}

void
gw_addr_text(const uint8_t key[16], char *out, size_t cap)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (memcmp(key, mapped, 12) == 0)
        snprintf(out, cap, "%u.%u.%u.%u", key[12], key[13], key[14], key[15]);
    else
        snprintf(out, cap, "%x:%x:%x:%x::/64", key[0] << 8 | key[1], key[2] << 8 | key[3],
                 key[4] << 8 | key[5], key[6] << 8 | key[7]);
}

/* Under limits_mu. */
static gw_addr *
limits_find(const uint8_t key[16])
{
    uint64_t h = nrpc_hash_bytes(key, 16);
    nrpc_tnode *n;

    for (n = nrpc_table_get(&limits_table, h); n; n = nrpc_table_next(&limits_table, n, h))
        if (memcmp(((gw_addr *)n)->key, key, 16) == 0)
            return (gw_addr *)n;
    return NULL;
}

int
gw_limits_may_accept(const gw_config *cfg, const uint8_t key[16])
{
    gw_addr *a;
    int ok;

    if (cfg->conn_per_addr == 0)
        return 1;
    pthread_mutex_lock(&limits_mu);
    a = limits_find(key);
    ok = a == NULL || a->conns < cfg->conn_per_addr;
    pthread_mutex_unlock(&limits_mu);
    return ok;
}

gw_addr *
gw_limits_open(const gw_config *cfg, const uint8_t key[16], int *over)
{
    gw_addr *a;

    *over = 0;
    pthread_mutex_lock(&limits_mu);
    a = limits_find(key);
    if (a == NULL) {
        a = calloc(1, sizeof *a);
        if (a == NULL || nrpc_table_put(&limits_table, &a->node, nrpc_hash_bytes(key, 16)) != 0) {
            pthread_mutex_unlock(&limits_mu);
            free(a);
            return NULL;
        }
        memcpy(a->key, key, 16);
    }
    a->conns++;
    if (cfg->conn_per_addr != 0 && a->conns > cfg->conn_per_addr)
        *over = 1;
    pthread_mutex_unlock(&limits_mu);
    return a;
}

void
gw_limits_close(gw_addr *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&limits_mu);
    a->conns--;
    pthread_mutex_unlock(&limits_mu);
}

static void
bucket_refill(gw_bucket *b, unsigned rate, unsigned burst, int64_t now_ms)
{
    if (!b->primed) {
        b->primed = 1;
        b->tokens = (double)burst;
        b->last_ms = now_ms;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * (double)rate / 1000.0;
        if (b->tokens > (double)burst)
            b->tokens = (double)burst;
        b->last_ms = now_ms;
    }
}

int
gw_bucket_take(gw_bucket *b, unsigned rate, unsigned burst, int64_t now_ms)
{
    double ms;
    int wait;

    if (rate == 0)
        return 0;
    bucket_refill(b, rate, burst, now_ms);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    /* Whole seconds until the next token, rounded up. */
    ms = (1.0 - b->tokens) * 1000.0 / (double)rate;
    wait = (int)((ms + 999.0) / 1000.0);
    return wait < 1 ? 1 : wait;
}

int
gw_bucket_full(gw_bucket *b, unsigned rate, unsigned burst, int64_t now_ms)
{
    if (rate == 0 || !b->primed)
        return 1;
    bucket_refill(b, rate, burst, now_ms);
    return b->tokens >= (double)burst;
}

int
gw_limits_take(const gw_config *cfg, gw_addr *a, int64_t now_ms)
{
    int wait;

    if (a == NULL || cfg->rate == 0)
        return 0;
    pthread_mutex_lock(&limits_mu);
    wait = gw_bucket_take(&a->bucket, cfg->rate, cfg->rate_burst, now_ms);
    pthread_mutex_unlock(&limits_mu);
    return wait;
}

void
gw_limits_sweep(const gw_config *cfg, int64_t now_ms)
{
    gw_addr *gone = NULL;
    size_t i;

    pthread_mutex_lock(&limits_mu);
    for (i = 0; i < limits_table.nbuckets; i++) {
        nrpc_tnode *n = limits_table.buckets[i], *next;
        for (; n; n = next) {
            gw_addr *a = (gw_addr *)n;
            next = n->next;
            if (a->conns != 0)
                continue;
            if (gw_bucket_full(&a->bucket, cfg->rate, cfg->rate_burst, now_ms)) {
                nrpc_table_remove(&limits_table, n);
                a->node.next = (nrpc_tnode *)gone;
                gone = a;
            }
        }
    }
    pthread_mutex_unlock(&limits_mu);
    while (gone) {
        gw_addr *a = gone;
        gone = (gw_addr *)a->node.next;
        free(a);
    }
}

size_t
gw_limits_addresses(void)
{
    size_t n;

    pthread_mutex_lock(&limits_mu);
    n = limits_table.count;
    pthread_mutex_unlock(&limits_mu);
    return n;
}

int
gw_body_reserve(const gw_config *cfg, size_t n)
{
    size_t cur = atomic_load_explicit(&body_held, memory_order_relaxed);

    do {
        if (cfg->body_memory != 0 && (n > cfg->body_memory || cur > cfg->body_memory - n))
            return -1;
    } while (!atomic_compare_exchange_weak_explicit(&body_held, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}

void
gw_body_release(size_t n)
{
    atomic_fetch_sub_explicit(&body_held, n, memory_order_relaxed);
}

size_t
gw_body_held(void)
{
    return atomic_load_explicit(&body_held, memory_order_relaxed);
}
