/* access_map.c: what the catalog's $SRV.INFO replies declare about access.
 * Built once per gather, read by every loop: immutable after the build,
 * freed by its last reference (an atomic count, since loops hold it). One
 * allocation per entry; a lookup hashes the key and compares it. Three
 * kinds of entry:
 *   - an rpc subject and its access;
 *   - a declared topic ("emits", "topics": events.<service>.<name>), with
 *     who may subscribe and who may publish (NULL: nobody but the service);
 *   - a service's topic space, events.<service>, which it alone publishes in.
 * When replicas disagree (a rolling upgrade), the strictest wins: "public"
 * only if every replica says so, scopes as any replica says, and nobody
 * publishes if any replica says so. */
#include "auth.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { ENTRY_RPC, ENTRY_TOPIC, ENTRY_SPACE };

typedef struct {
    nrpc_tnode node;
    int kind;
    char *access;  /* rpc, topic: who calls or subscribes */
    char *publish; /* topic: who publishes, NULL: nobody */
    size_t len;
    char subject[]; /* len bytes and a NUL */
} access_entry;

struct gw_access_map {
    atomic_int refs;
    nrpc_table t;
    access_entry **topics; /* the ENTRY_TOPIC entries, for prefix scans */
    size_t ntopics, captopics;
    size_t nspaces; /* ENTRY_SPACE entries */
};

static access_entry *
map_find(const gw_access_map *m, int kind, const char *subject, size_t len)
{
    uint64_t key = nrpc_hash_bytes(subject, len) + (uint64_t)kind;
    nrpc_tnode *n;

    for (n = nrpc_table_get(&m->t, key); n; n = nrpc_table_next(&m->t, n, key)) {
        access_entry *e = (access_entry *)n;
        if (e->kind == kind && e->len == len && memcmp(e->subject, subject, len) == 0)
            return e;
    }
    return NULL;
}

/* Of two declarations of one rpc, the one that lets fewer callers in:
 * anything beats public, scopes beat authenticated. */
static int
stricter(const char *a, const char *b)
{
    if (strcmp(b, NRPC_PUBLIC) == 0)
        return 0;
    if (strcmp(a, NRPC_PUBLIC) == 0)
        return 1;
    if (strcmp(a, NRPC_AUTHENTICATED) == 0)
        return strcmp(b, NRPC_AUTHENTICATED) != 0;
    return 0;
}

/* Two scope lists: a caller needs every scope either names (a rolling
 * upgrade that adds or renames a scope applies it at once: services do
 * not check scopes themselves, so the gateway must not let through a
 * caller whom one replica refuses, whichever replica answered the gather
 * first). New, or NULL when out of memory. A union over NRPC_MAX_ACCESS
 * bytes cannot be named (nor held by any caller): the longer list stands
 * for it. */
static char *
scopes_union(const char *a, const char *b)
{
    size_t la = strlen(a), n = la;
    char *u = malloc(la + 1 + strlen(b) + 1);
    const char *p;

    if (u == NULL)
        return NULL;
    memcpy(u, a, la + 1);
    for (p = b; *p;) {
        size_t tlen = strcspn(p, " ");
        const char *q;
        int have = 0;

        for (q = a; *q && !have; q += strcspn(q, " "), q += *q == ' ')
            have = strcspn(q, " ") == tlen && memcmp(q, p, tlen) == 0;
        if (!have) {
            u[n++] = ' ';
            memcpy(u + n, p, tlen);
            n += tlen;
            u[n] = '\0';
        }
        p += tlen;
        p += *p == ' ';
    }
    if (n > NRPC_MAX_ACCESS) {
        free(u);
        return strdup(strlen(b) > la ? b : a);
    }
    return u;
}

/* Sets *slot to the stricter of itself and v (a copy). -1: out of memory. */
static int
keep_stricter(char **slot, const char *v)
{
    char *c;

    if (*slot && strcmp(*slot, v) == 0)
        return 0;
    if (*slot && strcmp(*slot, NRPC_PUBLIC) != 0 && strcmp(*slot, NRPC_AUTHENTICATED) != 0 &&
        strcmp(v, NRPC_PUBLIC) != 0 && strcmp(v, NRPC_AUTHENTICATED) != 0)
        c = scopes_union(*slot, v);
    else if (*slot && !stricter(*slot, v))
        return 0;
    else
        c = strdup(v);
    if (c == NULL)
        return -1;
    free(*slot);
    *slot = c;
    return 0;
}

/* The entry of kind for subject, new or found (*fresh says which). */
static access_entry *
map_entry(gw_access_map *m, int kind, const char *subject, int *fresh)
{
    size_t len = strlen(subject);
    access_entry *e = map_find(m, kind, subject, len);

    *fresh = 0;
    if (e)
        return e;
    if (kind == ENTRY_TOPIC && m->ntopics == m->captopics) {
        size_t cap = m->captopics ? 2 * m->captopics : 16;
        access_entry **t = realloc(m->topics, cap * sizeof *t);
        if (t == NULL)
            return NULL;
        m->topics = t;
        m->captopics = cap;
    }
    e = calloc(1, sizeof *e + len + 1);
    if (e == NULL)
        return NULL;
    memcpy(e->subject, subject, len + 1);
    e->len = len;
    e->kind = kind;
    if (nrpc_table_put(&m->t, &e->node, nrpc_hash_bytes(subject, len) + (uint64_t)kind) != 0) {
        free(e);
        return NULL;
    }
    if (kind == ENTRY_TOPIC)
        m->topics[m->ntopics++] = e;
    else if (kind == ENTRY_SPACE)
        m->nspaces++;
    *fresh = 1;
    return e;
}

/* 1 if topic is a valid WAMP topic (its subject fits NRPC_MAX_SUBJECT). */
static int
topic_ok(const char *topic)
{
    char subject[NRPC_MAX_SUBJECT + 1];
    return nrpc_topic_subject(topic, subject, sizeof subject) == 0;
}

/* The declared topics of one service (the metadata's "emits" or "topics":
 * JSON text of [{subject, access, publish}]). Entries outside the
 * service's own space are ignored. -1: out of memory. */
static int
add_topics(gw_access_map *m, const char *service, const char *text)
{
    json_t *list = text ? json_loads(text, 0, NULL) : NULL, *t;
    char space[NRPC_MAX_SUBJECT + 2];
    size_t i, n = (size_t)snprintf(space, sizeof space, NRPC_EVENT_PREFIX "%s.", service);
    int rc = 0;

    json_array_foreach (list, i, t) {
        const char *subject = json_string_value(json_object_get(t, "subject"));
        const char *access = json_string_value(json_object_get(t, "access"));
        json_t *pub = json_object_get(t, "publish");
        const char *publish = json_string_value(pub);
        access_entry *e;
        int fresh;

        if (subject == NULL || strncmp(subject, space, n) != 0 ||
            !topic_ok(subject + sizeof NRPC_EVENT_PREFIX - 1))
            continue;
        if (access == NULL || !nrpc_access_valid(access))
            access = NRPC_AUTHENTICATED;
        if (publish && !nrpc_access_valid(publish))
            publish = NULL;
        if ((e = map_entry(m, ENTRY_TOPIC, subject, &fresh)) == NULL ||
            keep_stricter(&e->access, access) != 0) {
            rc = -1;
            break;
        }
        if (fresh) {
            if (publish && (e->publish = strdup(publish)) == NULL) {
                rc = -1;
                break;
            }
        } else if (publish == NULL) {
            free(e->publish);
            e->publish = NULL; /* one replica says nobody: nobody */
        } else if (e->publish && keep_stricter(&e->publish, publish) != 0) {
            rc = -1;
            break;
        }
    }
    json_decref(list);
    return rc;
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
        const char *name = json_string_value(json_object_get(info, "name"));
        json_t *md = json_object_get(info, "metadata");

        if (name && strchr(name, '.') == NULL && topic_ok(name)) {
            char space[NRPC_MAX_SUBJECT + 1];
            int fresh;
            snprintf(space, sizeof space, NRPC_EVENT_PREFIX "%s", name);
            if (map_entry(m, ENTRY_SPACE, space, &fresh) == NULL ||
                add_topics(m, name, json_string_value(json_object_get(md, "emits"))) != 0 ||
                add_topics(m, name, json_string_value(json_object_get(md, "topics"))) != 0)
                goto oom;
        }
        json_array_foreach (json_object_get(info, "endpoints"), j, ep) {
            const char *subject = json_string_value(json_object_get(ep, "subject"));
            const char *access =
                json_string_value(json_object_get(json_object_get(ep, "metadata"), "access"));
            access_entry *e;
            int fresh;

            if (subject == NULL || !nrpc_subject_is_rpc(subject, strlen(subject)))
                continue;
            /* Undeclared or unreadable: an authenticated caller is needed. */
            if (access == NULL || !nrpc_access_valid(access))
                access = NRPC_AUTHENTICATED;
            if ((e = map_entry(m, ENTRY_RPC, subject, &fresh)) == NULL ||
                keep_stricter(&e->access, access) != 0)
                goto oom;
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
        free(((access_entry *)n)->publish);
        free(n);
    }
    nrpc_table_free(&m->t);
    free(m->topics);
    free(m);
}

const char *
gw_access_map_get(const gw_access_map *m, const char *subject, size_t len)
{
    const access_entry *e = m ? map_find(m, ENTRY_RPC, subject, len) : NULL;
    return e ? e->access : NULL;
}

int
gw_access_map_topic(const gw_access_map *m, const char *subject, size_t len, const char **access,
                    const char **publish)
{
    const access_entry *e = m ? map_find(m, ENTRY_TOPIC, subject, len) : NULL;

    if (e == NULL)
        return 0;
    *access = e->access;
    *publish = e->publish;
    return 1;
}

int
gw_access_map_space(const gw_access_map *m, const char *space, size_t len)
{
    return m && map_find(m, ENTRY_SPACE, space, len) != NULL;
}

size_t
gw_access_map_nspaces(const gw_access_map *m)
{
    return m ? m->nspaces : 0;
}

size_t
gw_access_map_ntopics(const gw_access_map *m)
{
    return m ? m->ntopics : 0;
}

const char *
gw_access_map_topic_at(const gw_access_map *m, size_t i, const char **access,
                       const char **publish)
{
    *access = m->topics[i]->access;
    *publish = m->topics[i]->publish;
    return m->topics[i]->subject;
}
