/* greeting.h: the greeting_service definition, for main.c and the tests. */
#ifndef GREETING_H
#define GREETING_H
#include <natsrpc.h>
extern const nrpc_service_def greeting_service;
#endif
