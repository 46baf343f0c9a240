/* bind.c: binds [args, kwargs] to declared parameters the way Python binds
 * a call: positionally first, then by name, then defaults; every problem is
 * reported before the handler runs, naming the parameter. */
#include "internal.h"
#include "bind.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *
json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

/* Checks v against t. May replace *v (a whole real for an integer
 * parameter becomes an integer): *v is then a new reference the caller
 * stores instead. Returns 0 when it fits. */
static int
type_fits(nrpc_type t, json_t **v, int null_ok)
{
    json_t *x = *v;

    if (json_is_null(x))
        return null_ok || t == NRPC_ANY ? 0 : -1;
    switch (t) {
    case NRPC_ANY: return 0;
    case NRPC_STRING: return json_is_string(x) ? 0 : -1;
    case NRPC_NUMBER: return json_is_number(x) ? 0 : -1;
    case NRPC_BOOLEAN: return json_is_boolean(x) ? 0 : -1;
    case NRPC_ARRAY: return json_is_array(x) ? 0 : -1;
    case NRPC_OBJECT: return json_is_object(x) ? 0 : -1;
    case NRPC_INTEGER:
        if (json_is_integer(x))
            return 0;
        if (json_is_real(x)) {
            double d = json_real_value(x);
            if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0) {
                *v = json_integer((json_int_t)d);
                return 0;
            }
        }
        return -1;
    }
    return -1;
}

static size_t
param_count(const nrpc_param *params)
{
    size_t n = 0;
    while (params && params[n].name)
        n++;
    return n;
}

int
nrpc__bind(const nrpc_param *params, json_t *const *defaults, unsigned flags, json_t *args,
           json_t *kwargs, json_t **bound_out, json_t **varargs_out, json_t **varkw_out, char *err,
           size_t errlen)
{
    size_t n = param_count(params), m = json_array_size(args), i;
    /* The leftovers exist only for rpcs that take them: two allocations
     * fewer per call for everything else. */
    json_t *bound = json_object();
    json_t *varargs = flags & NRPC_VARARGS ? json_array() : NULL;
    json_t *varkw = flags & NRPC_VARKW ? json_object() : NULL;
    const char *key;
    json_t *value;

    *bound_out = *varargs_out = *varkw_out = NULL;
    if (m > n && !(flags & NRPC_VARARGS)) {
        snprintf(err, errlen, "takes %zu positional argument%s but %zu %s given", n,
                 n == 1 ? "" : "s", m, m == 1 ? "was" : "were");
        goto fail;
    }
    for (i = 0; i < m; i++) {
        json_t *v = json_array_get(args, i);
        if (i < n)
            json_object_set_nocheck(bound, params[i].name, v);
        else
            json_array_append(varargs, v);
    }
    json_object_foreach(kwargs, key, value) {
        size_t p;
        for (p = 0; p < n; p++)
            if (strcmp(params[p].name, key) == 0)
                break;
        if (p == n) {
            if (!(flags & NRPC_VARKW)) {
                snprintf(err, errlen, "got an unexpected keyword argument '%s'", key);
                goto fail;
            }
            json_object_set(varkw, key, value);
        } else if (json_object_get(bound, key)) {
            snprintf(err, errlen, "got multiple values for argument '%s'", key);
            goto fail;
        } else {
            json_object_set_nocheck(bound, key, value);
        }
    }
    for (i = 0; i < n; i++) {
        json_t *v = json_object_get(bound, params[i].name), *orig = v;
        int null_ok = defaults[i] && json_is_null(defaults[i]);

        if (v == NULL) {
            if (defaults[i] == NULL) {
                snprintf(err, errlen, "missing required argument '%s' (%s)", params[i].name,
                         nrpc_type_name(params[i].type));
                goto fail;
            }
            json_object_set_nocheck(bound, params[i].name, defaults[i]);
            continue;
        }
        if (type_fits(params[i].type, &v, null_ok) != 0) {
            snprintf(err, errlen, "argument '%s' must be %s%s, not %s", params[i].name,
                     (params[i].type == NRPC_INTEGER || params[i].type == NRPC_ARRAY ||
                      params[i].type == NRPC_OBJECT || params[i].type == NRPC_ANY)
                         ? "an "
                         : "a ",
                     nrpc_type_name(params[i].type), json_kind(orig));
            goto fail;
        }
        if (v != orig)
            json_object_set_new_nocheck(bound, params[i].name, v);
    }
    *bound_out = bound;
    *varargs_out = varargs;
    *varkw_out = varkw;
    return 0;
fail:
    json_decref(bound);
    json_decref(varargs);
    json_decref(varkw);
    return -1;
}

int
nrpc__parse_defaults(const nrpc_param *params, json_t ***out, char *err, size_t errlen)
{
    size_t n = param_count(params), i;
    json_t **d = calloc(n + 1, sizeof *d);

    *out = NULL;
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        json_error_t jerr;
        if (params[i].default_json == NULL)
            continue;
        d[i] = json_loads(params[i].default_json, JSON_DECODE_ANY, &jerr);
        if (d[i] == NULL) {
            snprintf(err, errlen, "default of '%s' is not JSON: %s", params[i].name, jerr.text);
            nrpc__free_defaults(d, n);
            return -1;
        }
    }
    *out = d;
    return 0;
}

void
nrpc__free_defaults(json_t **defaults, size_t n)
{
    size_t i;
    if (defaults == NULL)
        return;
    for (i = 0; i < n; i++)
        json_decref(defaults[i]);
    free(defaults);
}

int
nrpc_bind(const nrpc_param *params, unsigned flags, json_t *args, json_t *kwargs, json_t **bound,
          json_t **varargs, json_t **varkw, char *err, size_t errlen)
{
    json_t **defaults;
    int rc;

    if (nrpc__parse_defaults(params, &defaults, err, errlen) != 0)
        return -1;
    rc = nrpc__bind(params, defaults, flags, args, kwargs, bound, varargs, varkw, err, errlen);
    nrpc__free_defaults(defaults, param_count(params));
    return rc;
}
