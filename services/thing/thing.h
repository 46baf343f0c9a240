/* thing.h: the thing_service definition and its validators, for main.c and
 * the tests. */
#ifndef THING_H
#define THING_H
#include <natsrpc.h>
#include <stddef.h>

extern const nrpc_service_def thing_service;
int thing_uuid_valid(const char *s);
int thing_name_trim(const char *in, char *out, size_t outlen);

#endif
