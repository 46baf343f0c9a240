/* status.c: text for library status codes and wire error codes. */
#include "internal.h"

const char *
nrpc_status_text(nrpc_status s)
{
    switch (s) {
    case NRPC_OK: return "ok";
    case NRPC_ERR_INVALID_ARG: return "invalid argument";
    case NRPC_ERR_NOMEM: return "out of memory";
    case NRPC_ERR_NATS: return "NATS error";
    case NRPC_ERR_STATE: return "not allowed in this state";
    case NRPC_ERR_SYSTEM: return "system call failed";
    case NRPC_ERR_REFUSED: return "refused by the NATS server";
    }
    return "unknown status";
}

const char *
nrpc_code_type(int code)
{
    switch (code) {
    case NRPC_CODE_BAD_REQUEST: return "invalid_argument";
    case NRPC_CODE_UNAUTHENTICATED: return "unauthenticated";
    case NRPC_CODE_FORBIDDEN: return "permission_denied";
    case NRPC_CODE_NOT_FOUND: return "not_found";
    case NRPC_CODE_TOO_LARGE: return "too_large";
    case NRPC_CODE_UNAVAILABLE: return "unavailable";
    case NRPC_CODE_TIMEOUT: return "timeout";
    default: return code >= 400 && code < 500 ? "invalid_argument" : "internal";
    }
}

const char *
nrpc_type_name(nrpc_type t)
{
    switch (t) {
    case NRPC_ANY: return "any";
    case NRPC_STRING: return "string";
    case NRPC_NUMBER: return "number";
    case NRPC_INTEGER: return "integer";
    case NRPC_BOOLEAN: return "boolean";
    case NRPC_ARRAY: return "array";
    case NRPC_OBJECT: return "object";
    }
    return "any";
}
