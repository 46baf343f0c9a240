/* subject.c: which subjects a gateway may forward as rpc calls, and the
 * event subject of a topic. */
#include "internal.h"

#include <string.h>

static int
subject_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

int
nrpc_subject_is_rpc(const char *s, size_t len)
{
    size_t i, dot = 0, dots = 0;

    if (s == NULL || len == 0 || len > NRPC_MAX_SUBJECT)
        return 0; /* see NRPC_MAX_SUBJECT: a long one would cost the connection */
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            dots++;
            dot = i;
        } else if (!subject_token_char((unsigned char)s[i])) {
            return 0; /* wildcards, '$', spaces, control bytes... */
        }
    }
    if (dots != 1 || dot == 0 || dot == len - 1)
        return 0;
    /* Replies travel on _INBOX.<...>: forwarding there would let a caller
     * inject answers into other callers' requests. */
    if (dot == 6 && memcmp(s, "_INBOX", 6) == 0)
        return 0;
    return 1;
}

/* out = NRPC_EVENT_PREFIX + topic, for topics or, with wildcards, patterns. */
static int
topic_to_subject(const char *topic, int wildcards, char *out, size_t outlen)
{
    size_t len = topic ? strlen(topic) : 0, i, start = 0;
    int wild = 0; /* the token so far holds a wildcard */

    if (len == 0 || len + sizeof NRPC_EVENT_PREFIX - 1 > NRPC_MAX_SUBJECT ||
        len + sizeof NRPC_EVENT_PREFIX > outlen)
        return -1;
    /* Tokens of rpc characters separated by single dots: no '$', no empty
     * tokens, and wildcards only as whole tokens of a pattern, '>' last. */
    for (i = 0; i <= len; i++) {
        if (i < len && topic[i] != '.') {
            if (wildcards && (topic[i] == '*' || topic[i] == '>'))
                wild = 1;
            else if (!subject_token_char((unsigned char)topic[i]))
                return -1;
            continue;
        }
        if (i == start)
            return -1;
        if (wild && (i - start != 1 || (topic[start] == '>' && i != len)))
            return -1; /* "a*", "**", "a.>.b" */
        start = i + 1;
        wild = 0;
    }
    memcpy(out, NRPC_EVENT_PREFIX, sizeof NRPC_EVENT_PREFIX - 1);
    memcpy(out + sizeof NRPC_EVENT_PREFIX - 1, topic, len + 1);
    return 0;
}

int
nrpc_topic_subject(const char *topic, char *out, size_t outlen)
{
    return topic_to_subject(topic, 0, out, outlen);
}

int
nrpc__topic_pattern_subject(const char *pattern, char *out, size_t outlen)
{
    return topic_to_subject(pattern, 1, out, outlen);
}
