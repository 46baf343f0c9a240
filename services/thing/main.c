/* main.c: thing_service as a program. DATABASE_URL picks the database. */
#include "thing.h"

int
main(int argc, char **argv)
{
    return nrpc_service_main(&thing_service, argc, argv);
}
