/* github_source.h: the github_source service's definition. */
#ifndef GITHUB_SOURCE_H
#define GITHUB_SOURCE_H

#include <natsrpc.h>

#include <stddef.h>

extern const nrpc_service_def github_source_service;

/* The URL of rel="next" in a Link header value, into out (outlen bytes):
 * 1, or 0 when there is none (or it does not fit). */
int github_next_link(const char *link, char *out, size_t outlen);

#endif
