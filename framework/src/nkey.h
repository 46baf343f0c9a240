/* nkey.h: NATS user nkeys (private to framework/src; see nkey.c). */
#ifndef NRPC_NKEY_H
#define NRPC_NKEY_H

#include <stddef.h>

#define NRPC_NKEY_SEED_LEN 58   /* "SU" + 56 base32 characters */
#define NRPC_NKEY_PUBLIC_LEN 56 /* "U" + 55 */

/* The seed in a file's text, by nats.c's rule: the first line that starts,
 * after blanks, with "SU" (a bare seed, or an nsc "USER NKEY SEED" block).
 * Returns a pointer into text and its length (up to a blank or the end of
 * the line), or NULL. */
const char *nrpc__nkey_find_seed(const char *text, size_t len, size_t *seed_len);

/* Fills out with the public key ("U...") of the user nkey seed of len
 * bytes. Returns NULL, or a static text saying why seed is not one. */
const char *nrpc__nkey_user_public(const char *seed, size_t len,
                                   char out[NRPC_NKEY_PUBLIC_LEN + 1]);

#endif
