/* wire.c: the call convention on the wire: request bodies [args, kwargs],
 * replies [result_args, result_kwargs] and the one error shape. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
only_space(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

int
nrpc_request_decode(const char *body, size_t len, json_t **args, json_t **kwargs, char *err,
                    size_t errlen)
{
    json_error_t jerr;
    json_t *root, *a = NULL, *k = NULL;

    *args = *kwargs = NULL;
    if (body == NULL || only_space(body, len)) {
        *args = json_array();
        *kwargs = json_object();
        return 0;
    }
    root = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "request body is not valid JSON: %s at line %d, column %d",
                 jerr.text, jerr.line, jerr.column);
        return -1;
    }
    if (json_is_object(root)) { /* a bare object: keyword arguments only */
        *args = json_array();
        *kwargs = root;
        return 0;
    }
    if (!json_is_array(root) || json_array_size(root) > 2) {
        snprintf(err, errlen,
                 "request body must be [args, kwargs], [args], [] or an object of keyword "
                 "arguments");
        json_decref(root);
        return -1;
    }
    a = json_array_get(root, 0);
    k = json_array_get(root, 1);
    if (a != NULL && !json_is_array(a)) {
        snprintf(err, errlen, "args (the first item of the request body) must be an array, not %s",
                 json_is_object(a) ? "an object" : "a scalar");
        json_decref(root);
        return -1;
    }
    if (k != NULL && !json_is_object(k)) {
        snprintf(err, errlen, "kwargs (the second item of the request body) must be an object");
        json_decref(root);
        return -1;
    }
    *args = a ? json_incref(a) : json_array();
    *kwargs = k ? json_incref(k) : json_object();
    json_decref(root);
    return 0;
}

char *
nrpc_reply_encode(json_t *args, json_t *kwargs)
{
    json_t *pair = json_array();
    char *text;

    json_array_append_new(pair, args ? args : json_array());
    json_array_append_new(pair, kwargs ? kwargs : json_object());
    /* No indent: jansson writes ", " and ": " separators, which reads well
     * in a terminal and is what the README shows. */
    text = json_dumps(pair, JSON_ENCODE_ANY);
    json_decref(pair);
    return text;
}

json_t *
nrpc_error_body(int code, const char *type, const char *message)
{
    /* The message often quotes the caller's input (a path, a subject):
     * bytes that are not UTF-8 are kept as \xNN rather than losing the body. */
    return json_pack("{s:{s:i, s:o, s:o}}", "error", "code", code, "type",
                     nrpc__json_text(type ? type : nrpc_code_type(code)), "message",
                     nrpc__json_text(message));
}

char *
nrpc__error_text(int code, const char *type, const char *message)
{
    json_t *body = nrpc_error_body(code, type, message);
    char *text = body ? json_dumps(body, 0) : NULL;
    json_decref(body);
    return text;
}

natsStatus
nrpc__error_msg(natsMsg **out, const char *reply, int code, const char *type, const char *message)
{
    char *text = nrpc__error_text(code, type, message);
    char codebuf[16];
    char hdrmsg[512];
    natsStatus s;
    size_t i;

    if (text == NULL)
        return NATS_NO_MEMORY;
    s = natsMsg_Create(out, reply, NULL, text, (int)strlen(text));
    free(text);
    if (s != NATS_OK)
        return s;
    snprintf(codebuf, sizeof codebuf, "%d", code);
    /* A header value must stay on one line. */
    snprintf(hdrmsg, sizeof hdrmsg, "%s", message ? message : "");
    for (i = 0; hdrmsg[i]; i++)
        if (hdrmsg[i] == '\r' || hdrmsg[i] == '\n')
            hdrmsg[i] = ' ';
    s = natsMsgHeader_Set(*out, NRPC_HDR_ERROR_CODE, codebuf);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, NRPC_HDR_ERROR, hdrmsg);
    if (s != NATS_OK) {
        natsMsg_Destroy(*out);
        *out = NULL;
    }
    return s;
}
