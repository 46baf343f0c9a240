/* main.c: greeting_service as a program (flags, env, connect, serve, drain). */
#include "greeting.h"

int
main(int argc, char **argv)
{
    return nrpc_service_main(&greeting_service, argc, argv);
}
