/*
 * auth.h: identity and permissions at the gateway (GATEWAY_AUTH).
 *
 *   auth_file.c    the GATEWAY_AUTH file -> gw_auth (no I/O but reading it)
 *   auth_header.c  Authorization header -> gw_cred (no I/O: fuzzed)
 *   auth_jwt.c     JWTs checked against the JWKS file (rhonabwy)
 *   auth_loop.c    a loop's identification: static tokens, Basic (crypt_r on
 *                  libuv's thread pool), JWTs, the authorizer rpc over the
 *                  loop's NATS client, and the per-loop cache of verdicts
 *   access_map.c   rpc subject -> access, from the catalog's INFO replies
 *
 * The rule (README "Putting it on the internet"): an rpc whose access is
 * "public" is open to everyone; any other needs an authenticated caller
 * (else 401 with WWW-Authenticate) holding every scope the access names
 * (else 403). A credential that is sent is always checked, also for a
 * public rpc: a bad one is 401, never silently anonymous.
 *
 * A gw_auth is immutable once loaded and shared by every loop; everything
 * else is one loop's and runs on its thread.
 */
#ifndef NRPC_GW_AUTH_H
#define NRPC_GW_AUTH_H

#include <natsrpc.h>

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GW_AUTH_MAX_FILE (4 * 1024 * 1024) /* bytes of the GATEWAY_AUTH file */
#define GW_AUTH_MAX_HEADER 8192            /* bytes of an Authorization header */
#define GW_AUTH_MAX_SUB 256                /* bytes of a principal's subject */
#define GW_AUTH_CACHE_MAX 10000            /* verdicts one loop keeps */
#define GW_AUTH_BASIC_TTL_MS 60000         /* a checked Basic password, cached */
#define GW_AUTH_JWT_LEEWAY_S 30            /* clock skew allowed on exp and nbf */
#define GW_AUTH_JWT_TTL_MS 60000           /* a verified JWT, cached (never past exp) */
#define GW_AUTH_REALM "natsrpc"
#define GW_SCOPE_PUBLISH "events:publish" /* what a WAMP PUBLISH needs (auth on) */

typedef struct gw_auth gw_auth;

/* ---------------------------------------------------------------------------
 * auth_file.c
 */
/* Parses the file's text (len bytes; dir: where relative paths such as
 * jwks_file start, NULL for the current directory). *out is new:
 * gw_auth_free. On error returns -1 with a message naming the key in err. */
int gw_auth_parse(const char *text, size_t len, const char *dir, gw_auth **out, char *err,
                  size_t errlen);
/* Reads path (at most GW_AUTH_MAX_FILE bytes) and parses it: as TOML when
 * its name ends in ".toml" (any case; auth_toml.h), else as JSON. */
int gw_auth_load(const char *path, gw_auth **out, char *err, size_t errlen);
void gw_auth_free(gw_auth *a);
/* One line about what a is configured with, for the start-up log. */
void gw_auth_describe(const gw_auth *a, char *out, size_t outlen);
/* The WWW-Authenticate value of a 401 (static text): Bearer, Basic (only
 * when the file has Basic users), or both. basic is unused for now. */
const char *gw_auth_challenge(const gw_auth *a, int basic);

/* ---------------------------------------------------------------------------
 * auth_header.c
 */
typedef enum {
    GW_CRED_NONE = 0,  /* no header */
    GW_CRED_BEARER,    /* token: borrowed from the header */
    GW_CRED_BASIC,     /* user and pass decoded into the gw_cred */
    GW_CRED_MALFORMED, /* a header we cannot read: 401 */
} gw_cred_kind;

#define GW_CRED_MAX_BASIC 1024 /* decoded bytes of user:password */

typedef struct {
    gw_cred_kind kind;
    const char *token; /* GW_CRED_BEARER: into the header, token_len bytes */
    size_t token_len;
    char *user, *pass; /* GW_CRED_BASIC: NUL-terminated, into buf */
    char buf[GW_CRED_MAX_BASIC + 2];
} gw_cred;

/* Reads an Authorization header value (NULL: none). "Bearer <token68>" or
 * "Basic <base64 of user:password>", scheme case-insensitive; anything
 * else (another scheme, bad base64, no ':', control characters, over
 * GW_AUTH_MAX_HEADER bytes) is GW_CRED_MALFORMED with a reason in *why
 * (static text). Returns c->kind. */
gw_cred_kind gw_cred_parse(const char *header, gw_cred *c, const char **why);
/* Decodes standard base64 (padding required, no whitespace) of n bytes into
 * out (cap bytes). Returns the decoded length, or -1. */
long gw_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap);
/* 1 if the n bytes of token have the shape of a JWS (three base64url parts). */
int gw_cred_is_jwt(const char *token, size_t n);

/* ---------------------------------------------------------------------------
 * A principal: who the caller is, filled by identification into memory of
 * the caller's (one per request).
 */
typedef enum {
    GW_ID_ANONYMOUS = 0, /* no credentials */
    GW_ID_OK,            /* sub and scopes are set */
    GW_ID_INVALID,       /* credentials refused: 401 */
    GW_ID_UNAVAILABLE,   /* the authorizer did not answer: 503 (fail closed) */
} gw_id_result;

typedef struct {
    gw_id_result result;
    int basic; /* the credentials were Basic (the challenge says so) */
    char sub[GW_AUTH_MAX_SUB + 1];
    char scopes[NRPC_MAX_ACCESS + 1]; /* space-separated */
    char why[160];                    /* GW_ID_INVALID / UNAVAILABLE: for the message */
    int64_t exp; /* GW_ID_OK by a JWT just checked: its exp (s since the epoch); else 0 */
} gw_principal;

/* The header NRPC_HDR_PRINCIPAL for p ({"sub", "scopes": [...]}, ASCII
 * only): new (free), NULL when p is not GW_ID_OK or out of memory. */
char *gw_principal_header(const gw_principal *p);

/* The decision for one call: 0 to go on, else the HTTP status (401, 403,
 * 503) with a message in msg. */
int gw_auth_decide(const char *access, const gw_principal *p, const char *subject, char *msg,
                   size_t msglen);

/* ---------------------------------------------------------------------------
 * auth_jwt.c (used by auth_loop.c)
 */
typedef struct gw_jwt_keys gw_jwt_keys;
/* Imports the JWKS text: new, or NULL with a message in err. */
gw_jwt_keys *gw_jwt_keys_new(const char *jwks_text, char *err, size_t errlen);
void gw_jwt_keys_free(gw_jwt_keys *k);
/* Checks token (n bytes) with a's JWT settings and keys k at time now
 * (seconds since the epoch): GW_ID_OK with p's sub and scopes set, or
 * GW_ID_INVALID with p->why. */
gw_id_result gw_jwt_check(const gw_auth *a, gw_jwt_keys *k, const char *token, size_t n,
                          int64_t now, gw_principal *p);

/* ---------------------------------------------------------------------------
 * auth_loop.c
 */
typedef struct gw_auth_loop gw_auth_loop;
/* Called once when identification finishes later (on the loop's thread);
 * p is the caller's, now filled. */
typedef void (*gw_auth_cb)(void *closure, gw_principal *p);

/* A loop's identification with a (borrowed, outlives it) and client (the
 * loop's; borrowed: used for the authorizer). New, NULL when out of memory
 * or the JWKS does not import. */
gw_auth_loop *gw_auth_loop_new(const gw_auth *a, uv_loop_t *uv, nrpc_client *client);
/* The client goes away (the drain): authorizer calls from now on fail
 * closed. */
void gw_auth_loop_detach(gw_auth_loop *al);
/* Frees once the last pending work (thread-pool checks, authorizer calls)
 * has come back. NULL-safe. */
void gw_auth_loop_free(gw_auth_loop *al);
const gw_auth *gw_auth_loop_config(const gw_auth_loop *al);
/* Verdicts al's cache holds now (at most GW_AUTH_CACHE_MAX; for tests). */
size_t gw_auth_loop_cached(const gw_auth_loop *al);
/* How many Basic checks and authorizer calls are in flight (each answers
 * every caller that came with the same credentials meanwhile). */
size_t gw_auth_loop_checking(const gw_auth_loop *al);

/* Identifies the caller of an Authorization header value (NULL: none).
 * Returns 1 when p is filled now (cb is not called), 0 when cb(closure, p)
 * will run exactly once later on the loop's thread: p must stay valid
 * until then. */
int gw_auth_identify(gw_auth_loop *al, const char *authorization, gw_principal *p, gw_auth_cb cb,
                     void *closure);

/* ---------------------------------------------------------------------------
 * access_map.c: the access of every rpc in the catalog. Immutable once
 * built; shared between loops by reference counting.
 */
typedef struct gw_access_map gw_access_map;
/* From $SRV.INFO replies (an array): new (one reference), NULL when out of
 * memory. */
gw_access_map *gw_access_map_build(json_t *infos);
gw_access_map *gw_access_map_ref(gw_access_map *m);
void gw_access_map_unref(gw_access_map *m); /* NULL-safe */
/* The access of rpc subject (len bytes), borrowed from m; NULL when the
 * catalog does not know it. */
const char *gw_access_map_get(const gw_access_map *m, const char *subject, size_t len);
/* A declared topic's subject (events.<service>.<name>, len bytes): 1 with
 * who may subscribe (*access) and publish (*publish, NULL: nobody), both
 * borrowed from m; 0 when no service declares it. */
int gw_access_map_topic(const gw_access_map *m, const char *subject, size_t len, const char **access,
                        const char **publish);
/* 1 if space (events.<service>, len bytes) is the topic space of a service
 * in the catalog. */
int gw_access_map_space(const gw_access_map *m, const char *space, size_t len);
/* How many services' topic spaces m knows. */
size_t gw_access_map_nspaces(const gw_access_map *m);
/* The declared topics, by index (for prefix subscriptions): the subject,
 * with access and publish as gw_access_map_topic; all borrowed from m. */
size_t gw_access_map_ntopics(const gw_access_map *m);
const char *gw_access_map_topic_at(const gw_access_map *m, size_t i, const char **access,
                                   const char **publish);

/* ---------------------------------------------------------------------------
 * topic_access.c: who may subscribe to and publish on a WAMP topic, from
 * the services' declarations (the access map), the GATEWAY_AUTH file's
 * "topics" rules and the defaults (README "Topics"):
 *   - a declared topic: as its service says; the file may make it stricter;
 *   - an undeclared topic in a service's space: subscribing needs an
 *     authenticated session; nobody publishes on it;
 *   - any other topic: as the file's best rule says (an exact rule, else
 *     the longest "prefix.>"), else subscribing needs an authenticated
 *     session and publishing the scope GW_SCOPE_PUBLISH;
 *   - a prefix subscription needs the strictest of what every topic under
 *     it may need: at least an authenticated session, unless a rule covers
 *     the whole prefix and the prefix takes in no service's space.
 */
typedef enum { GW_TOPIC_SUBSCRIBE, GW_TOPIC_PUBLISH } gw_topic_op;
typedef enum {
    GW_TOPIC_KNOWN = 0, /* the access is in out */
    GW_TOPIC_UNKNOWN,   /* nothing declares or rules it: gather, then default */
    GW_TOPIC_NOBODY,    /* nobody may (through the gateway) */
} gw_topic_verdict;

/* Parses the file's "topics" object into a (auth_file.c calls it). -1 with
 * a message in err. */
int gw_topic_rules_parse(gw_auth *a, json_t *topics, char *err, size_t errlen);
void gw_topic_rules_free(gw_auth *a);
/* The access op on topic (the WAMP topic, not the subject: "a.b"; for a
 * prefix subscription the prefix, without a trailing '.') needs, into out
 * (outlen >= NRPC_MAX_ACCESS + 1). m may be NULL (no catalog yet), a NULL. */
gw_topic_verdict gw_topic_access(const gw_access_map *m, const gw_auth *a, const char *topic,
                                 int prefix, gw_topic_op op, char *out, size_t outlen);

#endif /* NRPC_GW_AUTH_H */
