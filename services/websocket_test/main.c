/* main.c: websocket_test as a program (flags, env, connect, serve, drain). */
#include "websocket_test.h"

int
main(int argc, char **argv)
{
    return nrpc_service_main(&websocket_test_service, argc, argv);
}
