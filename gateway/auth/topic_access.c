/* topic_access.c: who may subscribe to and publish on a WAMP topic (see
 * auth.h): the file's "topics" rules, and the decision from them, the
 * services' declarations and the defaults. No I/O: fuzzed through the
 * auth file and unit-tested whole. */
#include "auth_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One "subscribe" or "publish" value: a string in nrpc_rpc.access's form,
 * or null (or false, which TOML can write) for nobody. */
static int
rule_value(json_t *v, const char *key, const char *where, int *set, char **out, char *err,
           size_t errlen)
{
    if (v == NULL)
        return 0;
    *set = 1;
    if (json_is_null(v) || json_is_false(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        !nrpc_access_valid(json_string_value(v)))
        return gw_auth_fail(err, errlen,
                            "topics.%s: \"%s\" must be \"public\", \"authenticated\", "
                            "space-separated scopes, or null (false) for nobody",
                            where, key);
    if ((*out = strdup(json_string_value(v))) == NULL)
        return gw_auth_fail(err, errlen, "out of memory");
    return 0;
}

int
gw_topic_rules_parse(gw_auth *a, json_t *topics, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    size_t n = 0;

    if (!json_is_object(topics))
        return gw_auth_fail(err, errlen,
                            "\"topics\" must be an object: {\"<topic>\" or \"<prefix>.>\": "
                            "{\"subscribe\": ..., \"publish\": ...}}");
    if (json_object_size(topics) > GW_TOPIC_RULES_MAX)
        return gw_auth_fail(err, errlen, "topics: more than %d rules", GW_TOPIC_RULES_MAX);
    a->topic_rules = calloc(json_object_size(topics) + 1, sizeof *a->topic_rules);
    if (a->topic_rules == NULL)
        return gw_auth_fail(err, errlen, "out of memory");
    json_object_foreach(topics, key, v)
    {
        gw_topic_rule *r = &a->topic_rules[n];
        char where[80], subject[NRPC_MAX_SUBJECT + 1];
        size_t len = strlen(key);
        const char *k;
        json_t *x;

        snprintf(where, sizeof where, "%.64s", key);
        r->prefix = strcmp(key, ">") == 0 || (len > 2 && strcmp(key + len - 2, ".>") == 0);
        if (r->prefix)
            len = len > 2 ? len - 2 : 0;
        if ((r->topic = strndup(key, len)) == NULL)
            return gw_auth_fail(err, errlen, "out of memory");
        r->len = len;
        a->ntopic_rules = ++n;
        if (len > 0 && nrpc_topic_subject(r->topic, subject, sizeof subject) != 0)
            return gw_auth_fail(err, errlen,
                                "topics: '%s' must be a topic (dot-separated tokens of letters, "
                                "digits, '_' and '-') or one followed by \".>\", or \">\"",
                                where);
        if (!json_is_object(v))
            return gw_auth_fail(err, errlen, "topics.%s: must be {\"subscribe\", \"publish\"}",
                                where);
        json_object_foreach(v, k, x)
        {
            if (strcmp(k, "subscribe") != 0 && strcmp(k, "publish") != 0)
                return gw_auth_fail(err, errlen, "topics.%s: unknown key '%.64s'", where, k);
        }
        if (rule_value(json_object_get(v, "subscribe"), "subscribe", where, &r->sub_set,
                       &r->subscribe, err, errlen) != 0 ||
            rule_value(json_object_get(v, "publish"), "publish", where, &r->pub_set, &r->publish,
                       err, errlen) != 0)
            return -1;
    }
    return 0;
}

void
gw_topic_rules_free(gw_auth *a)
{
    size_t i;

    for (i = 0; i < a->ntopic_rules; i++) {
        free(a->topic_rules[i].topic);
        free(a->topic_rules[i].subscribe);
        free(a->topic_rules[i].publish);
    }
    free(a->topic_rules);
    a->topic_rules = NULL;
    a->ntopic_rules = 0;
}

/* 1 if topic t (n bytes) is under the prefix p (pn bytes; 0: everything):
 * p's tokens, then more. */
static int
under(const char *t, size_t n, const char *p, size_t pn)
{
    return pn == 0 || (n > pn && t[pn] == '.' && memcmp(t, p, pn) == 0);
}

/* The rule for topic t: an exact one, else the longest prefix one. With
 * whole set, t is a prefix subscription's prefix and only prefix rules
 * covering all of it count (the prefix itself or above). */
static const gw_topic_rule *
best_rule(const gw_auth *a, const char *t, size_t n, int whole)
{
    const gw_topic_rule *best = NULL;
    size_t i;

    for (i = 0; a && i < a->ntopic_rules; i++) {
        const gw_topic_rule *r = &a->topic_rules[i];
        if (!r->prefix) {
            if (!whole && r->len == n && memcmp(r->topic, t, n) == 0)
                return r;
            continue;
        }
        if ((under(t, n, r->topic, r->len) ||
             (whole && r->len == n && memcmp(r->topic, t, n) == 0)) &&
            (best == NULL || r->len > best->len))
            best = r;
    }
    return best;
}

/* What a session needs, gathered as the strictest of several accesses. */
typedef struct {
    int nobody;
    int authenticated;
    int overflow; /* too many scopes to name: nobody */
    char scopes[NRPC_MAX_ACCESS + 1];
    size_t len, count;
} need;

/* Adds access (NULL: authenticated) to nd. */
static void
need_add(need *nd, const char *access)
{
    const char *p, *end;

    if (access == NULL || strcmp(access, NRPC_AUTHENTICATED) == 0) {
        nd->authenticated = 1;
        return;
    }
    if (strcmp(access, NRPC_PUBLIC) == 0)
        return;
    nd->authenticated = 1;
    for (p = access; *p; p = *end ? end + 1 : end) {
        size_t n;
        const char *q;
        int have = 0;

        end = strchr(p, ' ');
        if (end == NULL)
            end = p + strlen(p);
        n = (size_t)(end - p);
        for (q = nd->scopes; *q && !have; q += strcspn(q, " "), q += *q == ' ') {
            size_t m = strcspn(q, " ");
            have = m == n && memcmp(q, p, n) == 0;
        }
        if (have)
            continue;
        if (nd->count == 32 || nd->len + (nd->len > 0) + n > NRPC_MAX_ACCESS) {
            nd->overflow = 1;
            return;
        }
        if (nd->len > 0)
            nd->scopes[nd->len++] = ' ';
        memcpy(nd->scopes + nd->len, p, n);
        nd->len += n;
        nd->scopes[nd->len] = '\0';
        nd->count++;
    }
}

/* Adds a rule's value for op: unnamed, the default dflt (nothing when
 * dflt is NULL: a service's declaration stands); named null, nobody. */
static void
need_rule(need *nd, const gw_topic_rule *r, gw_topic_op op, const char *dflt)
{
    int set = op == GW_TOPIC_SUBSCRIBE ? r->sub_set : r->pub_set;
    const char *v = op == GW_TOPIC_SUBSCRIBE ? r->subscribe : r->publish;

    if (!set) {
        if (dflt)
            need_add(nd, dflt);
    } else if (v == NULL)
        nd->nobody = 1;
    else
        need_add(nd, v);
}

static gw_topic_verdict
need_out(const need *nd, char *out, size_t outlen)
{
    if (nd->nobody || nd->overflow)
        return GW_TOPIC_NOBODY;
    snprintf(out, outlen, "%s",
             nd->len             ? nd->scopes
             : nd->authenticated ? NRPC_AUTHENTICATED
                                 : NRPC_PUBLIC);
    return GW_TOPIC_KNOWN;
}

gw_topic_verdict
gw_topic_access(const gw_access_map *m, const gw_auth *a, const char *topic, int prefix,
                gw_topic_op op, char *out, size_t outlen)
{
    char subject[NRPC_MAX_SUBJECT + 1];
    size_t n = strlen(topic), first = strcspn(topic, "."), plen = sizeof NRPC_EVENT_PREFIX - 1;
    const char *access, *publish;
    const gw_topic_rule *r;
    need nd;
    int known = 0;

    memset(&nd, 0, sizeof nd);
    if (plen + n + 1 > sizeof subject)
        return GW_TOPIC_NOBODY; /* callers refuse such topics before */
    memcpy(subject, NRPC_EVENT_PREFIX, plen);
    memcpy(subject + plen, topic, n + 1);
    if (prefix) {
        size_t i;
        if (op != GW_TOPIC_SUBSCRIBE)
            return GW_TOPIC_NOBODY;
        /* Everything under the prefix that anybody declares or rules... */
        for (i = 0; i < gw_access_map_ntopics(m); i++) {
            const char *s = gw_access_map_topic_at(m, i, &access, &publish);
            if (under(s + plen, strlen(s + plen), topic, n))
                need_add(&nd, access);
        }
        for (i = 0; a && i < a->ntopic_rules; i++) {
            const gw_topic_rule *x = &a->topic_rules[i];
            if (under(x->topic, x->len, topic, n))
                need_rule(&nd, x, op, NRPC_AUTHENTICATED);
        }
        /* ...and what nobody declares: a rule over the whole prefix says,
         * else an authenticated session is needed. */
        if ((r = best_rule(a, topic, n, 1)) != NULL)
            need_rule(&nd, r, op, NRPC_AUTHENTICATED);
        else
            need_add(&nd, NRPC_AUTHENTICATED);
        /* An undeclared topic in a service's space needs an authenticated
         * session whatever the rules say (they only make a service's
         * topics stricter): so does a prefix in such a space, or above
         * every space (""), else a rule such as ">" public would hand an
         * anonymous session what the exact topic refuses it. */
        if (n == 0 ? gw_access_map_nspaces(m) > 0 : gw_access_map_space(m, subject, plen + first))
            need_add(&nd, NRPC_AUTHENTICATED);
        return m == NULL ? GW_TOPIC_UNKNOWN : need_out(&nd, out, outlen);
    }
    if (gw_access_map_topic(m, subject, plen + n, &access, &publish)) {
        known = 1;
        if (op == GW_TOPIC_SUBSCRIBE)
            need_add(&nd, access);
        else if (publish == NULL)
            return GW_TOPIC_NOBODY;
        else
            need_add(&nd, publish);
    } else if (gw_access_map_space(m, subject, plen + first)) {
        known = 1;
        if (op == GW_TOPIC_PUBLISH)
            return GW_TOPIC_NOBODY; /* the service's own space */
        need_add(&nd, NRPC_AUTHENTICATED);
    }
    if ((r = best_rule(a, topic, n, 0)) != NULL) {
        need_rule(&nd, r, op,
                  known                      ? NULL
                  : op == GW_TOPIC_SUBSCRIBE ? NRPC_AUTHENTICATED
                                             : GW_SCOPE_PUBLISH);
        known = 1;
    } else if (!known && op == GW_TOPIC_PUBLISH) {
        need_add(&nd, GW_SCOPE_PUBLISH);
        known = 1;
    }
    if (!known)
        return GW_TOPIC_UNKNOWN;
    return need_out(&nd, out, outlen);
}
