/* access_map.c: rpc subject -> access, from the catalog's $SRV.INFO
 * replies. Built once per gather, read by every loop: immutable after the
 * build, freed by its last reference (an atomic count, since loops hold
 * it). One allocation per subject; a lookup hashes the subject and compares
 * it. When replicas disagree (a rolling upgrade), the strictest wins:
 * "public" only if every replica says so, scopes as any replica says. */
#include "auth.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nrpc_tnode node;
    char *access;
    size_t len;
    char subject[]; /* len bytes and a NUL */
} access_entry;

struct gw_access_map {
    atomic_int refs;
    nrpc_table t;
};

static access_entry *
map_find(const gw_access_map *m, const char *subject, size_t len)
{
    uint64_t key = nrpc_hash_bytes(subject, len);
    nrpc_tnode *n;

    for (n = nrpc_table_get(&m->t, key); n; n = nrpc_table_next(&m->t, n, key)) {
        access_entry *e = (access_entry *)n;
        if (e->len == len && memcmp(e->subject, subject, len) == 0)
            return e;
    }
    return NULL;
}

/* Of two declarations of one rpc, the one that lets fewer callers in:
 * anything beats public; between two scope lists, the longer (a rolling
 * upgrade adding a scope applies it at once). */
static int
stricter(const char *a, const char *b)
{
    if (strcmp(b, NRPC_PUBLIC) == 0)
        return 0;
    if (strcmp(a, NRPC_PUBLIC) == 0)
        return 1;
    if (strcmp(a, NRPC_AUTHENTICATED) == 0)
        return strcmp(b, NRPC_AUTHENTICATED) != 0;
    return strlen(b) > strlen(a);
}

gw_access_map *
gw_access_map_build(json_t *infos)
{
    gw_access_map *m = calloc(1, sizeof *m);
    json_t *info, *ep;
    size_t i, j;

    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    json_array_foreach (infos, i, info) {
        json_array_foreach (json_object_get(info, "endpoints"), j, ep) {
            const char *subject = json_string_value(json_object_get(ep, "subject"));
            const char *access =
                json_string_value(json_object_get(json_object_get(ep, "metadata"), "access"));
            size_t len;
            access_entry *e;

            if (subject == NULL || !nrpc_subject_is_rpc(subject, strlen(subject)))
                continue;
            /* Undeclared or unreadable: an authenticated caller is needed. */
            if (access == NULL || !nrpc_access_valid(access))
                access = NRPC_AUTHENTICATED;
            len = strlen(subject);
            if ((e = map_find(m, subject, len)) != NULL) {
                if (stricter(e->access, access)) {
                    char *a = strdup(access);
                    if (a == NULL)
                        goto oom;
                    free(e->access);
                    e->access = a;
                }
                continue;
            }
            e = malloc(sizeof *e + len + 1);
            if (e == NULL)
                goto oom;
            memcpy(e->subject, subject, len + 1);
            e->len = len;
            e->access = strdup(access);
            if (e->access == NULL || nrpc_table_put(&m->t, &e->node, nrpc_hash_bytes(subject, len))) {
                free(e->access);
                free(e);
                goto oom;
            }
        }
    }
    return m;
oom:
    gw_access_map_unref(m);
    return NULL;
}

gw_access_map *
gw_access_map_ref(gw_access_map *m)
{
    if (m)
        atomic_fetch_add(&m->refs, 1);
    return m;
}

void
gw_access_map_unref(gw_access_map *m)
{
    nrpc_tnode *n;

    if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    while ((n = nrpc_table_take_any(&m->t)) != NULL) {
        free(((access_entry *)n)->access);
        free(n);
    }
    nrpc_table_free(&m->t);
    free(m);
}

const char *
gw_access_map_get(const gw_access_map *m, const char *subject, size_t len)
{
    const access_entry *e = m ? map_find(m, subject, len) : NULL;
    return e ? e->access : NULL;
}
