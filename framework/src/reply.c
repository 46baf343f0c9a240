/* reply.c: the one reading of a NATS reply to an rpc, shared by the
 * gateway's client (client.c) and by handlers' outgoing calls (outcall.c),
 * so both see the same codes for the same message. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

void
nrpc__reply_read(natsMsg *msg, nrpc__reply *r)
{
    const char *v = NULL;
    int64_t code;

    memset(r, 0, sizeof *r);
    r->data = natsMsg_GetData(msg);
    r->len = (size_t)natsMsg_GetDataLength(msg);
    if (r->data == NULL)
        r->data = "";
    if (natsMsg_IsNoResponders(msg)) {
        r->code = NRPC_CODE_NOT_FOUND;
        r->no_responders = 1;
        r->message = "no responders";
        return;
    }
    if (natsMsgHeader_Get(msg, NRPC_HDR_ERROR_CODE, &v) != NATS_OK || v == NULL)
        return; /* a result */
    /* An error: the service API says 4xx/5xx. Anything else a peer sends is
     * not a code we can pass on, so it is an internal error. */
    r->code = nrpc_parse_int64(v, &code) == 0 && code >= 400 && code <= 599 ? (int)code
                                                                             : NRPC_CODE_INTERNAL;
    if (natsMsgHeader_Get(msg, NRPC_HDR_ERROR, &r->message) != NATS_OK || r->message == NULL ||
        r->message[0] == '\0')
        r->message = "error without a message";
}
