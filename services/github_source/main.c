/* main.c: github_source as a program (flags, env, connect, serve, drain). */
#include "github_source.h"

int
main(int argc, char **argv)
{
    return nrpc_service_main(&github_source_service, argc, argv);
}
