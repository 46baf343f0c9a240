/* fuzz_auth_toml.c: a GATEWAY_AUTH file in TOML on random text, the way
 * gw_auth_load reads one: toml++ (compiled into the target, so its branches
 * are seen), the conversion to JSON, then the JSON validator. A conversion
 * either gives JSON text that jansson reads back, or fails with a message
 * naming a line; a load either works (then describing and freeing it must)
 * or says why. Never a crash, a leak or an exception across the C
 * boundary. Relative jwks_file paths start in a directory of this run's
 * own, with one valid JWKS in it. */
#include "auth/auth.h"
#include "auth/auth_toml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *dir;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    dir = fuzz_auth_dir("fuzz_auth_toml");
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "", what[512];
    size_t len = 0;
    char *json = gw_toml_to_json_text((const char *)data, size, &len, err, sizeof err);
    gw_auth *a = NULL;
    json_error_t jerr;
    json_t *back;

    if (json == NULL) {
        /* a refusal names a line, and nothing is returned */
        if (len != 0 || (strncmp(err, "not TOML: line ", 15) != 0 &&
                         strncmp(err, "line ", 5) != 0 && strcmp(err, "out of memory") != 0))
            abort();
        return 0;
    }
    back = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (back == NULL || !json_is_object(back) || strlen(json) != len)
        abort(); /* the converter writes JSON, one object, no NUL inside */
    json_decref(back);
    err[0] = '\0';
    if (gw_auth_parse(json, len, dir, &a, err, sizeof err) == 0) {
        if (a == NULL)
            abort();
        gw_auth_describe(a, what, sizeof what);
        if (gw_auth_challenge(a, 0) == NULL)
            abort();
        gw_auth_free(a);
    } else if (a != NULL || err[0] == '\0') {
        abort();
    }
    free(json);
    return 0;
}
