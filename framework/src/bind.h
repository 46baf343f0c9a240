/* bind.h: binding with defaults parsed once per rpc (see bind.c). */
#ifndef NRPC_BIND_H
#define NRPC_BIND_H

#include "natsrpc.h"
#include <stdlib.h>

/* defaults[i] is the parsed default of params[i] or NULL (required);
 * borrowed. Otherwise as nrpc_bind. */
int nrpc__bind(const nrpc_param *params, json_t *const *defaults, unsigned flags, json_t *args,
               json_t *kwargs, json_t **bound, json_t **varargs, json_t **varkw, char *err,
               size_t errlen);
/* Parses every default_json once: *out is a new array of n entries (NULL
 * for required parameters), freed with nrpc__free_defaults. */
int nrpc__parse_defaults(const nrpc_param *params, json_t ***out, char *err, size_t errlen);
void nrpc__free_defaults(json_t **defaults, size_t n);

#endif
