"""A small JSON Schema (draft-07) checker, standard library only, for the
io.nats.micro.v1 schemas in schemas/.

It implements the keywords those schemas use: type, const, enum, required,
properties, additionalProperties, items, oneOf, anyOf, allOf, pattern,
minLength, minimum, maximum, format date-time and local $ref. Unknown
keywords are ignored, as JSON Schema says.

  errors = validate(instance, load("info_response"))   # [] when valid
"""

import datetime
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def load(name):
    with open(os.path.join(HERE, "schemas", name + ".json")) as f:
        return json.load(f)


def _date_time(s):
    try:
        datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", s).replace("Z", "+00:00"))
        return "T" in s.upper()
    except ValueError:
        return False


def _resolve(root, ref):
    if not ref.startswith("#"):
        raise ValueError("only local $ref is supported: %r" % ref)
    node = root
    for part in ref[1:].split("/")[1:]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validate(instance, schema, root=None, path="$"):
    """Returns a list of 'path: problem' strings, empty when valid."""
    root = root if root is not None else schema
    if schema is True or schema == {}:
        return []
    if schema is False:
        return ["%s: not allowed" % path]
    errs = []
    if "$ref" in schema:
        errs += validate(instance, _resolve(root, schema["$ref"]), root, path)
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(TYPES[x](instance) for x in types):
            return errs + ["%s: expected %s, got %r" % (path, "/".join(types), instance)]
    if "const" in schema and instance != schema["const"]:
        errs.append("%s: expected %r, got %r" % (path, schema["const"], instance))
    if "enum" in schema and instance not in schema["enum"]:
        errs.append("%s: %r not in %r" % (path, instance, schema["enum"]))
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            errs.append("%s: shorter than %d" % (path, schema["minLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errs.append("%s: %r does not match %s" % (path, instance, schema["pattern"]))
        if schema.get("format") == "date-time" and not _date_time(instance):
            errs.append("%s: %r is not a date-time" % (path, instance))
    if TYPES["number"](instance):
        if "minimum" in schema and instance < schema["minimum"]:
            errs.append("%s: below %r" % (path, schema["minimum"]))
        if "maximum" in schema and instance > schema["maximum"]:
            errs.append("%s: above %r" % (path, schema["maximum"]))
    if isinstance(instance, dict):
        for k in schema.get("required", []):
            if k not in instance:
                errs.append("%s: missing required %r" % (path, k))
        props = schema.get("properties", {})
        for k, v in instance.items():
            if k in props:
                errs += validate(v, props[k], root, "%s.%s" % (path, k))
            elif "additionalProperties" in schema:
                errs += validate(v, schema["additionalProperties"], root, "%s.%s" % (path, k))
    if isinstance(instance, list) and isinstance(schema.get("items"), (dict, bool)):
        for i, v in enumerate(instance):
            errs += validate(v, schema["items"], root, "%s[%d]" % (path, i))
    for sub in schema.get("allOf", []):
        errs += validate(instance, sub, root, path)
    if "anyOf" in schema and not any(not validate(instance, s, root, path) for s in schema["anyOf"]):
        errs.append("%s: matches none of anyOf" % path)
    if "oneOf" in schema:
        n = sum(1 for s in schema["oneOf"] if not validate(instance, s, root, path))
        if n != 1:
            errs.append("%s: matches %d of oneOf, expected exactly 1" % (path, n))
    return errs
