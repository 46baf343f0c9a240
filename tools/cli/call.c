/* call.c: natsrpc call, and the body builder pub shares. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *
cli_value(const char *word, int strict)
{
    const char *first = word + strspn(word, " \t\r\n");
    json_error_t e;
    json_t *v = json_loads(word, JSON_DECODE_ANY, &e);

    if (v)
        return v;
    if (strict && (*first == '[' || *first == '{')) {
        cli_err("not valid JSON: '%.60s%s': %s (line %d, column %d)", word,
                strlen(word) > 60 ? "..." : "", e.text, e.line, e.column);
        return NULL;
    }
    return json_string(word);
}

char *
cli_body_from_words(int argc, char **argv, int strict)
{
    json_t *args, *kwargs;
    int i;

    if (argc == 1) {
        json_t *v = json_loads(argv[0], JSON_DECODE_ANY, NULL);
        int whole = json_is_array(v) || json_is_object(v);
        json_decref(v);
        if (whole)
            return strdup(argv[0]);
    }
    args = json_array();
    kwargs = json_object();
    for (i = 0; i < argc; i++) {
        const char *w = argv[i], *eq;
        char key[256];
        json_t *value;

        if (strncmp(w, "--", 2) != 0 || w[2] == '\0' || w[2] == '-') {
            if ((value = cli_value(w, strict)) == NULL)
                goto bad;
            json_array_append_new(args, value);
            continue;
        }
        w += 2;
        eq = strchr(w, '=');
        if (eq) {
            snprintf(key, sizeof key, "%.*s", (int)(eq - w), w);
            value = cli_value(eq + 1, strict);
        } else {
            snprintf(key, sizeof key, "%s", w);
            if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                value = cli_value(argv[++i], strict);
            else
                value = json_true(); /* a bare --flag */
        }
        if (value == NULL)
            goto bad;
        if (key[0] == '\0' || json_object_get(kwargs, key) != NULL) {
            if (key[0] == '\0')
                cli_err("empty keyword name in '%s'", argv[i]);
            else
                cli_err("keyword argument '%s' given twice", key);
            json_decref(value);
            goto bad;
        }
        json_object_set_new(kwargs, key, value);
    }
    return nrpc_reply_encode(args, kwargs); /* "[args, kwargs]"; steals both */
bad:
    json_decref(args);
    json_decref(kwargs);
    return NULL;
}

/* Prints an error reply: its body's message on stderr. */
static void
call_print_error(const char *subject, const char *code, natsMsg *reply, int json)
{
    const char *data = natsMsg_GetData(reply);
    int len = natsMsg_GetDataLength(reply);
    json_t *body = data ? json_loadb(data, (size_t)len, 0, NULL) : NULL;
    json_t *err = json_object_get(body, "error");
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *message = json_string_value(json_object_get(err, "message"));
    const char *hdr = NULL;

    if (json && body)
        cli_print_json(body, 0);
    if (message == NULL && natsMsgHeader_Get(reply, NRPC_HDR_ERROR, &hdr) == NATS_OK)
        message = hdr;
    cli_err("%s: error %s %s: %s", subject, code, type ? type : nrpc_code_type(atoi(code)),
            message ? message : "(no message)");
    json_decref(body);
}

int
cli_cmd_call(const cli_opts *o, int argc, char **argv)
{
    natsConnection *nc;
    natsMsg *reply = NULL;
    const char *code = NULL;
    char *body;
    int rc;

    if (argc < 1) {
        cli_err("call: which rpc? (<service>.<method>)");
        return CLI_EXIT_USAGE;
    }
    if (!nrpc_subject_is_rpc(argv[0], strlen(argv[0]))) {
        cli_err("call: '%s' is not an rpc subject (<service>.<method>)", argv[0]);
        return CLI_EXIT_USAGE;
    }
    body = cli_body_from_words(argc - 1, argv + 1, 0);
    if (body == NULL)
        return CLI_EXIT_USAGE;
    nc = cli_connect(o);
    if (nc == NULL) {
        free(body);
        return CLI_EXIT_CONN;
    }
    rc = cli_request(nc, o, argv[0], body, strlen(body), &reply);
    free(body);
    if (rc == CLI_EXIT_OK) {
        if (natsMsgHeader_Get(reply, NRPC_HDR_ERROR_CODE, &code) == NATS_OK && code) {
            call_print_error(argv[0], code, reply, o->json);
            rc = CLI_EXIT_RPC;
        } else {
            fwrite(natsMsg_GetData(reply) ? natsMsg_GetData(reply) : "", 1,
                   (size_t)natsMsg_GetDataLength(reply), stdout);
            fputc('\n', stdout);
        }
        natsMsg_Destroy(reply);
    }
    cli_close(nc);
    return rc;
}
