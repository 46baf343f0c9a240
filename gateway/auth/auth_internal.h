/* auth_internal.h: the loaded GATEWAY_AUTH file, for the auth/ files only. */
#ifndef NRPC_GW_AUTH_INTERNAL_H
#define NRPC_GW_AUTH_INTERNAL_H

#include "auth.h"

#define GW_SHA256_LEN 32

/* A static bearer token, found by its SHA-256 (the table's key is the
 * digest's first 8 bytes): the token itself is never kept, and comparing
 * digests tells an attacker nothing about the token by its timing. */
typedef struct {
    nrpc_tnode node;
    unsigned char digest[GW_SHA256_LEN];
    char *sub, *scopes;
} gw_token_entry;

/* A Basic user, found by name. */
typedef struct {
    nrpc_tnode node;
    char *user, *hash, *sub, *scopes;
} gw_basic_entry;

/* A rule of the file's "topics": "a.b" (exact) or "a.b.>" (every topic
 * under a.b; ">" alone: every topic). */
typedef struct {
    char *topic; /* without ".>"; "" for ">" */
    size_t len;
    int prefix;
    /* who may: set says the rule names it; a NULL value (JSON null) is nobody */
    int sub_set, pub_set;
    char *subscribe, *publish;
} gw_topic_rule;

#define GW_TOPIC_RULES_MAX 1000

struct gw_auth {
    nrpc_table tokens;
    size_t ntokens;
    nrpc_table basic;
    size_t nbasic;
    /* A user whose hash an unknown user's password is checked against, and
     * refused whatever it gives: an unknown name costs what a known one
     * does, so timing does not tell which names exist. NULL: no users. */
    const gw_basic_entry *decoy;
    /* jwt */
    char *jwks_text; /* NULL: no JWTs */
    size_t njwks;
    char *issuer, *audience, *scopes_claim;
    /* authorizer */
    char *authorizer_rpc; /* NULL: none */
    int64_t authorizer_ttl_ms;
    int64_t authorizer_timeout_ms;
    /* topics */
    gw_topic_rule *topic_rules;
    size_t ntopic_rules;
};

/* Writes a message about the file into err; returns -1. */
int gw_auth_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* SHA-256 of n bytes into out. */
void gw_sha256(const void *p, size_t n, unsigned char out[GW_SHA256_LEN]);
uint64_t gw_digest_key(const unsigned char d[GW_SHA256_LEN]);
/* Joins a JSON array of scope strings into out (space-separated). -1 when
 * one is not a scope token or the whole passes outlen - 1 bytes. */
int gw_scopes_join(json_t *arr, char *out, size_t outlen);
/* 1 if s is one RFC 6749 scope token. */
int gw_scope_token_valid(const char *s);

#endif
