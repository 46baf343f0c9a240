"""GATEWAY_AUTH written in TOML (a file named *.toml): the same credentials as
JSON let the same callers in (a static token, Basic with bcrypt, a JWT
checked against a JWKS next to the file), a wrong one gets 401, and a
broken or hostile .toml stops the gateway at start with a message naming
the line, never a token and never a crash."""

import json
import os
import subprocess

import auth_kit
import harness
from harness import post

ALICE = "alice-toml-token-0123456789"
READER = "reader-toml-token-0123456789"


def bearer(t):
    return {"Authorization": "Bearer " + t}


def auth_toml(bob_hash):
    """The credentials file in TOML; jwks.json is next to it."""
    return """# GATEWAY_AUTH in TOML
[tokens.%s]
sub = "alice"
scopes = ["things:write"]

[tokens.%s]
sub = "reader"

[basic.bob]
hash = '%s'
scopes = ["admin"]

[jwt]
jwks_file = "jwks.json"
issuer = "%s"
audience = "%s"
scopes_claim = "scope"
""" % (ALICE, READER, bob_hash, auth_kit.ISSUER, auth_kit.AUDIENCE)


class AuthTomlTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = auth_kit.Keys()

        def start(stack):
            cls.nats = stack.nats()
            stack.service("test_principal_service", cls.nats,
                          ready_subject="principal_service.whoami")
            # the JWKS (and a JSON file the TOML one is compared with)
            auth_kit.write_auth_file(stack.dir, cls.keys, tokens={ALICE: {"sub": "alice"}})
            cls.path = os.path.join(stack.dir, "auth.toml")
            with open(cls.path, "w") as f:
                f.write(auth_toml(auth_kit.crypt_hash("bob-pw", "$2b$")))
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_AUTH": cls.path})
        cls.start_stack("auth_toml", start)

    def whoami(self, headers=None):
        return post(self.port, "principal_service.whoami", headers=headers)

    def test_the_file_is_read_as_toml(self):
        self.assertIn("auth on (%s): 2 tokens, 1 Basic users, JWTs from issuer %s, authorizer off"
                      % (self.path, auth_kit.ISSUER), self.gw.log_text())

    def test_toml_in_any_case(self):
        path = os.path.join(self.stack.dir, "AUTH.Toml")
        with open(path, "w") as f:
            f.write("[tokens.%s]\nsub = 'upper'\n" % ALICE)
        gw, port = self.stack.gateway(self.nats, env={"GATEWAY_AUTH": path})
        self.assertIn("auth on (%s): 1 tokens, 0 Basic users, JWTs off, authorizer off" % path,
                      gw.log_text())
        self.assertOk(post(port, "principal_service.whoami", headers=bearer(ALICE)),
                      '[[{"sub": "upper", "scopes": []}], {"admin": false}]')

    def test_a_token_from_the_file_is_accepted(self):
        self.assertOk(self.whoami(bearer(ALICE)),
                      '[[{"sub": "alice", "scopes": ["things:write"]}], {"admin": false}]')
        self.assertOk(self.whoami(bearer(READER)),
                      '[[{"sub": "reader", "scopes": []}], {"admin": false}]')

    def test_a_wrong_token_gets_401(self):
        for token in ("wrong-toml-token-0123456789", ALICE + "x", ALICE[:-1]):
            with self.subTest(token=token):
                r = self.whoami(bearer(token))
                self.assertEqual(r.status, 401, r.describe())
                self.assertEqual(r.json(), {"error": {
                    "code": 401, "type": "unauthenticated",
                    "message": "invalid credentials: unknown bearer token"}}, r.describe())
                self.assertEqual(r.headers.get("WWW-Authenticate"),
                                 'Bearer realm="natsrpc", Basic realm="natsrpc", charset="UTF-8"')
        r = self.whoami()
        self.assertEqual(r.status, 401, r.describe())

    def test_basic_and_jwt_from_the_file(self):
        self.assertOk(self.whoami({"Authorization": auth_kit.basic("bob", "bob-pw")}),
                      '[[{"sub": "bob", "scopes": ["admin"]}], {"admin": true}]')
        self.assertEqual(self.whoami({"Authorization": auth_kit.basic("bob", "nope")}).status, 401)
        self.assertOk(self.whoami(bearer(self.keys.token("RS256", kid="rs1", sub="jwt-toml"))),
                      '[[{"sub": "jwt-toml", "scopes": ["things:write"]}], {"admin": false}]')


class AuthTomlFileTest(harness.IntegrationCase):
    """A .toml that does not load stops the gateway (exit 2), naming the line."""

    @classmethod
    def setUpClass(cls):
        cls.start_stack("auth_toml_file", lambda stack: None)

    def run_gateway(self, path):
        env = dict(os.environ, GATEWAY_AUTH=path, GATEWAY_PORT="0",
                   NATS_URL="nats://127.0.0.1:1")
        p = subprocess.run([harness.binary("natsrpc-gateway")], env=env, capture_output=True,
                           timeout=30)
        return p.returncode, p.stderr.decode("utf-8", "backslashreplace")

    def write(self, name, data):
        path = os.path.join(self.stack.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def assertRefused(self, path, message):
        rc, err = self.run_gateway(path)
        self.assertEqual(rc, 2, err)
        lines = [ln for ln in err.splitlines() if "GATEWAY_AUTH=" in ln]
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].endswith("GATEWAY_AUTH=%s: %s" % (path, message)),
                        "%r\ndoes not end with\n%r" % (lines[0], message))
        return err

    def test_broken_toml_names_the_line(self):
        path = self.write("broken.toml", "[tokens.%s]\nsub = \"alice\nscopes = []\n" % ALICE)
        self.assertRefused(path, "not TOML: line 2 column 13: Error while parsing string: "
                                 "unescaped control characters other than TAB (U+0009) are "
                                 "explicitly prohibited")

    def test_bad_files(self):
        cases = {
            "duplicate token": (
                "[tokens.%s]\nsub = 'a'\n[tokens.%s]\nsub = 'b'\n" % (ALICE, ALICE),
                "not TOML: line 3 column 1: Error while parsing table header: cannot redefine "
                "existing table '...'"),
            "bad escape": ("[tokens.%s]\nsub = \"\\q\"\n" % ALICE,
                           "not TOML: line 2 column 9: Error while parsing string: unknown "
                           "escape sequence '\\q'"),
            "huge integer": ("[authorizer]\nrpc = 'a.b'\nttl_s = 123456789012345678901\n",
                             "not TOML: line 3 column 30: Error while parsing decimal integer: "
                             "'...' is not representable in 64 bits"),
            "invalid utf-8": (b"[tokens]\n# \xff\n",
                              "not TOML: line 2 column 2: Encountered invalid utf-8 sequence"),
            "nul byte": (b"[tokens]\x00\n", "not TOML: line 1 column 9: Error while parsing "
                                            "table header: expected a comment or whitespace, "
                                            "saw '\\u0000'"),
            "a date": ("[tokens.%s]\nsub = 1979-05-27\n" % ALICE,
                       "line 2 column 7: tokens[#1].sub: dates and times have no place in this "
                       "file (quote it if it is text)"),
            "nested arrays": ("a = " + "[" * 10000 + "]" * 10000 + "\n",
                              "not TOML: line 1 column 21: Error while parsing value: exceeded "
                              "maximum nested value depth of 16 (TOML_MAX_NESTED_VALUES)"),
            "nested tables": ("[" + ".".join(["a"] * 10000) + "]\n",
                              "line 1: more than 256 dots outside strings (a key of so many "
                              "parts nests too deep)"),
            # the validator's messages, as for JSON
            "unknown key": ("[tokenz]\n", "the file: unknown key 'tokenz'"),
            "short token": ("[tokens]\n%s = {sub = 'a'}\nshort = {sub = 'b'}\n" % ALICE,
                            "tokens[#2]: a token must have 16 to 4096 characters"),
            "bad hash": ("basic.bob.hash = 'plaintext'\n",
                         "basic.bob: \"hash\" must be a bcrypt ($2b$...) or yescrypt ($y$...) "
                         "hash, as mkpasswd or htpasswd -B make"),
            "empty": ("", "no credentials: give tokens, basic, jwt or authorizer"),
            "json in a .toml": (json.dumps({"tokens": {ALICE: {"sub": "a"}}}),
                                "not TOML: line 1 column 1: Error while parsing root table: "
                                "expected keys, tables, whitespace or comments, saw '{'"),
        }
        for what, (doc, message) in cases.items():
            with self.subTest(what=what):
                err = self.assertRefused(self.write("case.toml", doc), message)
                self.assertNotIn(ALICE, err)  # a token is never logged

    def test_the_name_picks_the_format(self):
        doc = "[tokens.%s]\nsub = 'a'\n" % ALICE
        self.assertRefused(self.write("auth.toml.json", doc),
                           "not JSON: line 1 column 7: invalid token near 'tokens'")
        self.assertRefused(self.write("auth", doc),
                           "not JSON: line 1 column 7: invalid token near 'tokens'")

    def test_too_large(self):
        path = self.write("big.toml", "# " + "x" * (4 * 1024 * 1024) + "\n")
        rc, err = self.run_gateway(path)
        self.assertEqual(rc, 2, err)
        self.assertIn("GATEWAY_AUTH=%s: " % path, err)
        self.assertIn("4194304", err)


if __name__ == "__main__":
    import unittest
    unittest.main()
