/* websocket_test.h: the websocket_test service definition, for main.c and the tests. */
#ifndef WEBSOCKET_TEST_H
#define WEBSOCKET_TEST_H
#include <natsrpc.h>
extern const nrpc_service_def websocket_test_service;
#endif
