/*
 * auth_toml.h: GATEWAY_AUTH files written in TOML (names ending in ".toml").
 *
 * The TOML is converted to the JSON value the file would have been, and that
 * JSON goes through gw_auth_parse like any other: the JSON validator stays
 * the only code that knows the file's keys. The conversion is the one C++
 * translation unit of the gateway (auth_toml.cpp, on toml++); this header is
 * its C interface and sees only jansson, and nothing is thrown across it.
 *
 * Mapping: tables -> objects (keys in the file's order), arrays -> arrays,
 * strings, integers (64-bit), floats (finite), booleans. Refused, with the
 * line, column and key: dates and times (the file has none; an unquoted
 * date is a typing slip, not text), inf and nan, strings or keys holding
 * U+0000, tables and arrays nested more than GW_TOML_MAX_DEPTH deep, a line
 * of more than GW_TOML_MAX_KEY_DOTS dots outside strings (a key of that many
 * parts would nest tables deeper than is safe to free), values nested more
 * than GW_TOML_MAX_NESTED_VALUES deep.
 */
#ifndef NRPC_GW_AUTH_TOML_H
#define NRPC_GW_AUTH_TOML_H

#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GW_TOML_MAX_DEPTH 32          /* tables and arrays, one inside another */
#define GW_TOML_MAX_KEY_DOTS 256      /* '.' outside strings on one line */
#define GW_TOML_MAX_NESTED_VALUES 16  /* arrays and inline tables, one in another */

/* Parses len bytes of TOML (at most GW_AUTH_MAX_FILE; need not end in NUL).
 * Returns a new JSON object (json_decref), or NULL with the reason in err:
 * "not TOML: line L column C: what" when the text does not parse,
 * "line L column C: key: what" when a value has no place in JSON, "line L:
 * more than ... dots" for the dotted-key bound. Keys of the top-level "tokens" table are
 * secrets: an error names them "tokens[#N]" (N: the N-th token of the file,
 * as gw_auth_parse does), and quoted text of 16 or more characters in
 * toml++'s own messages (which may repeat a key) is left out. */
json_t *gw_toml_to_json(const char *text, size_t len, char *err, size_t errlen);

/* gw_auth_load's choice of format: 1 when the name of path ends in ".toml"
 * (any case), else 0 (JSON). */
int gw_auth_path_is_toml(const char *path);

/* The TOML text as the JSON text gw_auth_parse takes: new (free), its length
 * in *outlen. NULL with gw_toml_to_json's reason in err. */
char *gw_toml_to_json_text(const char *text, size_t len, size_t *outlen, char *err,
                           size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* NRPC_GW_AUTH_TOML_H */
