/* table.c: the one hash table of natsrpc. Intrusive (entries embed an
 * nrpc_tnode), keyed by 64 bits, chained, doubling when the load passes 1,
 * never shrinking. String keys hash with nrpc_hash_str and compare in the
 * caller's loop over nrpc_table_next. Not thread-safe: callers lock. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* splitmix64's finalizer: consecutive tokens and pointers spread evenly. */
static size_t
slot(const nrpc_table *t, uint64_t key)
{
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    key ^= key >> 31;
    return (size_t)key & (t->nbuckets - 1);
}

uint64_t
nrpc_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t
nrpc_hash_str(const char *s)
{
    return nrpc_hash_bytes(s, strlen(s));
}

static int
table_grow(nrpc_table *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 64, i, old = t->nbuckets;
    nrpc_tnode **b = calloc(n, sizeof *b), **ob = t->buckets;

    if (b == NULL)
        return -1;
    t->buckets = b;
    t->nbuckets = n;
    t->any_from = 0; /* the entries move */
    for (i = 0; i < old; i++) {
        nrpc_tnode *e = ob[i], *next;
        for (; e; e = next) {
            size_t k = slot(t, e->key);
            next = e->next;
            e->next = b[k];
            b[k] = e;
        }
    }
    free(ob);
    return 0;
}

int
nrpc_table_put(nrpc_table *t, nrpc_tnode *n, uint64_t key)
{
    size_t k;

    if (t->count + 1 > t->nbuckets && table_grow(t) != 0)
        return -1;
    n->key = key;
    k = slot(t, key);
    n->next = t->buckets[k];
    t->buckets[k] = n;
    t->count++;
    if (k < t->any_from)
        t->any_from = k;
    return 0;
}

nrpc_tnode *
nrpc_table_get(const nrpc_table *t, uint64_t key)
{
    return nrpc_table_next(t, NULL, key);
}

nrpc_tnode *
nrpc_table_next(const nrpc_table *t, nrpc_tnode *after, uint64_t key)
{
    nrpc_tnode *e;

    if (t->nbuckets == 0)
        return NULL;
    for (e = after ? after->next : t->buckets[slot(t, key)]; e; e = e->next)
        if (e->key == key)
            return e;
    return NULL;
}

int
nrpc_table_remove(nrpc_table *t, nrpc_tnode *n)
{
    nrpc_tnode **pp;

    if (t->nbuckets == 0)
        return 0;
    for (pp = &t->buckets[slot(t, n->key)]; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            t->count--;
            return 1;
        }
    return 0;
}

nrpc_tnode *
nrpc_table_take(nrpc_table *t, uint64_t key)
{
    nrpc_tnode *e = nrpc_table_get(t, key);
    if (e)
        nrpc_table_remove(t, e);
    return e;
}

nrpc_tnode *
nrpc_table_take_any(nrpc_table *t)
{
    size_t i;

    /* From where the last one was found, not from bucket 0: emptying a
     * table entry by entry would scan the emptied buckets again at every
     * step, quadratic in its size. */
    for (i = t->any_from; i < t->nbuckets && t->count; i++)
        if (t->buckets[i]) {
            nrpc_tnode *e = t->buckets[i];
            t->buckets[i] = e->next;
            e->next = NULL;
            t->count--;
            t->any_from = i;
            return e;
        }
    return NULL;
}

void
nrpc_table_free(nrpc_table *t)
{
    free(t->buckets);
    memset(t, 0, sizeof *t);
}
