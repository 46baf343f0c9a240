/*
 * msg.c: freeing the core NATS messages natsrpc owns (internal.h says why
 * not through nats.c's collector thread).
 */
#include "internal.h"

/* Weak: NULL when the nats.c at hand does not export it. */
extern void natsMsg_free(void *object) __attribute__((weak));

void
nrpc__msg_destroy(natsMsg *msg)
{
    if (msg == NULL)
        return;
    if (natsMsg_free)
        natsMsg_free(msg);
    else
        natsMsg_Destroy(msg);
}

int
nrpc__msg_destroy_direct(void)
{
    return natsMsg_free != NULL;
}
