"""GATEWAY_AUTH on HTTP: who may call what (401 vs 403), the three kinds of
credentials (static tokens, Basic with bcrypt and yescrypt, JWTs with HS256,
RS256 and EdDSA), the delegated authorizer (cached, fail-closed), the
principal a service reads, hostile Authorization headers, and a credentials
file the gateway refuses to start with."""

import concurrent.futures
import json
import os
import signal
import subprocess
import threading

import auth_kit
import harness
from harness import http_call, post

ALICE = "alice-token-0123456789abcdef"   # things:write
READER = "reader-token-0123456789abcdef"  # no scopes
ADMIN = "admin-token-0123456789abcdefgh"  # admin, a
BEARER_CHALLENGE = 'Bearer realm="natsrpc", Basic realm="natsrpc", charset="UTF-8"'


def bearer(t):
    return {"Authorization": "Bearer " + t}


class AuthTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = auth_kit.Keys()

        def start(stack):
            cls.nats = stack.nats()
            cls.nc = harness.NatsClient(cls.nats.url)
            stack.service("greeting_service", cls.nats)
            stack.service("test_principal_service", cls.nats,
                          ready_subject="principal_service.whoami")
            cls.authz = stack.service("test_auth_service", cls.nats,
                                      ready_subject="auth_service.authorize")
            path = auth_kit.write_auth_file(
                stack.dir, cls.keys,
                tokens={ALICE: {"sub": "alice", "scopes": ["things:write"]},
                        READER: {"sub": "reader"},
                        ADMIN: {"sub": "root", "scopes": ["admin", "a"]}},
                basic_users={"bob": {"hash": auth_kit.crypt_hash("bob-pw", "$2b$"),
                                     "scopes": ["admin"]},
                             "yes": {"hash": auth_kit.crypt_hash("yes-pw", "$y$"),
                                     "sub": "yescrypt-user", "scopes": []},
                             # about a second to check: a caller held at the gate
                             "slow": {"hash": auth_kit.crypt_hash("slow-pw", "$2b$", cost=14),
                                      "scopes": []}},
                authorizer={"rpc": "auth_service.authorize", "ttl_s": 300, "timeout_s": 0.5})
            # One loop: each loop caches verdicts of its own, and the
            # authorizer counts below are exact with one.
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_AUTH": path,
                                                            "GATEWAY_THREADS": "1"})
            cls.open_gw, cls.open_port = stack.gateway(cls.nats)
        cls.start_stack("auth", start)

    def whoami(self, headers=None, port=None):
        return post(port or self.port, "principal_service.whoami", headers=headers)

    def assert401(self, r, contains=None):
        self.assertHttpError(r, 401, "unauthenticated", contains)
        self.assertEqual(r.headers.get("WWW-Authenticate"), BEARER_CHALLENGE, r.describe())

    # -- who may call what

    def test_public_rpc_needs_no_credentials(self):
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'),
                      '[["Hello, Bob"], {}]')
        self.assertOk(post(self.port, "principal_service.open"), '[[null], {"admin": false}]')

    def test_401_without_credentials_on_a_non_public_rpc(self):
        r = self.whoami()
        self.assert401(r)
        self.assertEqual(r.json(), {"error": {
            "code": 401, "type": "unauthenticated",
            "message": "principal_service.whoami needs credentials (Authorization: Bearer or Basic)"}})

    def test_403_with_credentials_that_lack_the_scope(self):
        r = post(self.port, "principal_service.admin", headers=bearer(ALICE))
        self.assertEqual(r.json(), {"error": {
            "code": 403, "type": "permission_denied",
            "message": "principal_service.admin needs the scopes 'admin'; alice has 'things:write'"}},
            r.describe())
        self.assertEqual(r.status, 403)
        self.assertIsNone(r.headers.get("WWW-Authenticate"))
        # every scope of the list is needed
        self.assertHttpError(post(self.port, "principal_service.both", headers=bearer(ALICE)), 403)
        self.assertOk(post(self.port, "principal_service.admin", headers=bearer(ADMIN)), '[["yes"], {}]')
        r = post(self.port, "principal_service.both", headers=bearer(ADMIN))
        self.assertHttpError(r, 403, contains="needs the scopes 'a b'; root has 'admin a'")

    def test_unknown_rpc_is_not_public(self):
        self.assert401(post(self.port, "nosuch_service.nothing"))
        r = post(self.port, "nosuch_service.nothing", headers=bearer(READER))
        self.assertHttpError(r, 404)

    def test_a_new_public_rpc_is_open_at_once(self):
        # websocket_test starts after the gateway: its first call makes the
        # gateway gather $SRV.INFO once, and the rpc is public
        self.stack.service("websocket_test", self.nats,
                           ready_subject="websocket_test.hello_websocket")
        self.assertOk(post(self.port, "websocket_test.websocket_test"), '[[], {"yay": "yay"}]')

    def test_auth_off_lets_everyone_in_and_says_so(self):
        self.assertOk(self.whoami(port=self.open_port), '[[null], {"admin": false}]')
        self.assertOk(post(self.open_port, "principal_service.admin"), '[["yes"], {}]')
        self.assertIn("AUTH IS OFF", self.open_gw.log_text())
        self.assertNotIn("AUTH IS OFF", self.gw.log_text())
        self.assertIn("auth on", self.gw.log_text())

    # -- OpenAPI

    def test_openapi_security(self):
        api = harness.wait_for(
            lambda: (lambda d: d if "/principal_service.both" in d["paths"] else None)(
                http_call(self.port, "GET", "/openapi.json?refresh=1").json()),
            10, what="principal_service in /openapi.json")
        self.assertEqual(api["components"]["securitySchemes"]["bearer"]["type"], "http")
        self.assertEqual(api["components"]["securitySchemes"]["bearer"]["scheme"], "bearer")
        self.assertEqual(api["components"]["securitySchemes"]["basic"]["scheme"], "basic")
        ops = {p: item["post"] for p, item in api["paths"].items() if "post" in item}
        self.assertEqual(ops["/greeting_service.hello"]["security"], [])
        self.assertNotIn("401", ops["/greeting_service.hello"]["responses"])
        self.assertEqual(ops["/principal_service.whoami"]["security"], [{"bearer": []}, {"basic": []}])
        self.assertEqual(ops["/principal_service.both"]["security"],
                         [{"bearer": ["a", "b"]}, {"basic": ["a", "b"]}])
        for code in ("401", "403"):
            self.assertIn(code, ops["/principal_service.admin"]["responses"])
        rpcs = sorted(p[1:] for p in ops)
        import node_tests
        out = node_tests.run_node(self, "openapi.mjs", rpcs,
                                  {"GATEWAY_URL": "http://127.0.0.1:%d" % self.port})
        self.assertTrue(json.loads(out.strip().splitlines()[-1])["valid"], out)

    def test_swagger_ui_authorize_button(self):
        import shutil
        import node_tests
        root = os.path.normpath(os.path.join(harness.HERE, "..", ".."))
        chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
        missing = None
        if chromium is None:
            missing = "chromium not found (apt-get install chromium)"
        elif not os.path.isdir(os.path.join(root, "node_modules", "playwright-core")):
            missing = "playwright-core not installed (npm ci at the repository root)"
        elif not os.path.exists(os.path.join(root, "frontend", "vendor", "swagger-ui",
                                             "swagger-ui-bundle.js")):
            missing = "Swagger UI not vendored (npm ci at the repository root)"
        if missing:
            if os.environ.get("NRPC_BIN_DIR"):
                self.fail(missing)
            self.skipTest(missing)
        harness.wait_for(lambda: "/principal_service.whoami" in http_call(
            self.port, "GET", "/openapi.json?refresh=1").json()["paths"], 10,
            what="whoami in /openapi.json")
        out = node_tests.run_node(self, "swagger_authorize.mjs", [], {
            "GATEWAY_URL": "http://127.0.0.1:%d" % self.port, "CHROMIUM": chromium,
            "TOKEN": ALICE, "RPC": "principal_service.whoami"}, timeout=90)
        self.assertEqual(json.loads(out.strip().splitlines()[-1]), {
            "without": 401, "with": 200,
            "body": [[{"sub": "alice", "scopes": ["things:write"]}], {"admin": False}]})

    # -- the principal reaches the handler

    def test_token_principal_reaches_the_handler(self):
        self.assertOk(self.whoami(bearer(ALICE)),
                      '[[{"sub": "alice", "scopes": ["things:write"]}], {"admin": false}]')
        self.assertOk(self.whoami(bearer(READER)),
                      '[[{"sub": "reader", "scopes": []}], {"admin": false}]')
        self.assertOk(post(self.port, "principal_service.open", headers=bearer(ADMIN)),
                      '[[{"sub": "root", "scopes": ["admin", "a"]}], {"admin": true}]')

    def test_a_principal_header_from_the_client_is_never_passed_on(self):
        forged = json.dumps({"sub": "mallory", "scopes": ["admin"]})
        for port in (self.port, self.open_port):
            with self.subTest(port=port):
                self.assertOk(post(port, "principal_service.open",
                                   headers={"Nrpc-Principal": forged}),
                              '[[null], {"admin": false}]')
        self.assertOk(post(self.port, "principal_service.open",
                           headers=dict(bearer(READER), **{"Nrpc-Principal": forged})),
                      '[[{"sub": "reader", "scopes": []}], {"admin": false}]')

    def test_a_principal_header_over_nats_is_read_by_the_service(self):
        m = self.nc.request("principal_service.whoami", b"",
                            headers={"Nrpc-Principal": '{"sub": "svc", "scopes": ["admin"]}'})
        self.assertEqual(m.json(), [[{"sub": "svc", "scopes": ["admin"]}], {"admin": True}])
        # malformed: no principal at all
        for bad in ['{"scopes": []}', 'not json', '{"sub": 3}', '{"sub": "x", "scopes": [1]}']:
            with self.subTest(bad=bad):
                m = self.nc.request("principal_service.whoami", b"", headers={"Nrpc-Principal": bad})
                self.assertEqual(m.json(), [[None], {"admin": False}])

    # -- Basic

    def test_basic_bcrypt_and_yescrypt(self):
        self.assertOk(self.whoami({"Authorization": auth_kit.basic("bob", "bob-pw")}),
                      '[[{"sub": "bob", "scopes": ["admin"]}], {"admin": true}]')
        self.assertOk(self.whoami({"Authorization": auth_kit.basic("yes", "yes-pw")}),
                      '[[{"sub": "yescrypt-user", "scopes": []}], {"admin": false}]')
        # again: from the cache, the same answer
        self.assertOk(self.whoami({"Authorization": auth_kit.basic("bob", "bob-pw")}),
                      '[[{"sub": "bob", "scopes": ["admin"]}], {"admin": true}]')

    def test_basic_wrong_password_or_user(self):
        for user, pw in [("bob", "wrong"), ("bob", ""), ("nobody", "bob-pw"), ("yes", "bob-pw"),
                         ("bob", "bob-pw ")]:
            with self.subTest(user=user, pw=pw):
                self.assert401(self.whoami({"Authorization": auth_kit.basic(user, pw)}),
                               contains="invalid credentials")

    def test_basic_concurrent_checks(self):
        results = []

        def one(i):
            pw = "bob-pw" if i % 2 == 0 else "bad-%d" % i
            results.append((i, self.whoami({"Authorization": auth_kit.basic("bob", pw)}).status))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), [(i, 200 if i % 2 == 0 else 401) for i in range(40)])

    def test_catalog_replaced_while_a_caller_is_checked(self):
        # A Basic check runs off the loop (bcrypt cost 14, about a second).
        # Meanwhile a gather replaces the catalog, and another call makes the
        # loop take the new access map and let go of the old one. The call
        # being checked must not read the rpc's access from the old map:
        # under ASan that was a heap-use-after-free that took the gateway down.
        out = {}
        t = threading.Thread(target=lambda: out.update(
            r=self.whoami({"Authorization": auth_kit.basic("slow", "slow-pw")})))
        t.start()
        self.addCleanup(t.join)
        r = harness.http_call(self.port, "GET", "/services?refresh=1")
        self.assertEqual(r.status, 200, r.describe())
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'),
                      '[["Hello, Bob"], {}]')
        t.join()
        self.assertOk(out["r"], '[[{"sub": "slow", "scopes": []}], {"admin": false}]')
        self.assertTrue(self.gw.alive(), self.gw.log_tail())

    # -- JWTs

    def test_jwt_of_each_algorithm_is_accepted(self):
        for alg, kid in [("HS256", "hs1"), ("RS256", "rs1"), ("EdDSA", "ed1"), ("RS256", None),
                         ("EdDSA", None)]:
            with self.subTest(alg=alg, kid=kid):
                tok = self.keys.token(alg, kid=kid, sub="jwt-" + alg)
                self.assertOk(self.whoami(bearer(tok)),
                              '[[{"sub": "jwt-%s", "scopes": ["things:write"]}], {"admin": false}]' % alg)

    def test_jwt_scopes_as_an_array_and_audience_lists(self):
        tok = self.keys.token("RS256", scope=["admin", "x:y"], aud=["other", auth_kit.AUDIENCE])
        self.assertOk(self.whoami(bearer(tok)),
                      '[[{"sub": "jwt-user", "scopes": ["admin", "x:y"]}], {"admin": true}]')
        self.assertOk(post(self.port, "principal_service.admin", headers=bearer(tok)), '[["yes"], {}]')

    def test_jwt_refused(self):
        import time as _t
        now = int(_t.time())
        bad = {
            "expired": self.keys.token("RS256", exp=now - 3600),
            "no exp": self.keys.token("RS256", exp=None),
            "not yet": self.keys.token("RS256", nbf=now + 3600),
            "wrong iss": self.keys.token("RS256", iss="https://evil.test"),
            "no iss": self.keys.token("RS256", iss=None),
            "wrong aud": self.keys.token("EdDSA", aud="another-gateway"),
            "no sub": self.keys.token("EdDSA", sub=None),
            "bad signature": self.keys.token("RS256", key=self.keys.other_rsa),
            "wrong HS key": self.keys.token("HS256", key=b"x" * 32),
            "alg none": self.keys.token("none"),
            # the RSA public key used as an HMAC secret (algorithm confusion)
            "HS256 with the RSA key": self.keys.token("HS256", key=self.keys.rsa_pem),
            "unknown kid": self.keys.token("RS256", kid="nope"),
            "kid of another key": self.keys.token("RS256", kid="ed1"),
            "embedded jwk": self.keys.token("RS256", key=self.keys.other_rsa, header={"jwk": {
                "kty": "RSA", "n": auth_kit._int_b64u(self.keys.other_rsa.public_key().public_numbers().n),
                "e": "AQAB"}}),
            "bad scopes": self.keys.token("RS256", scope="a\"b"),
        }
        for what, tok in bad.items():
            with self.subTest(what=what):
                self.assert401(self.whoami(bearer(tok)), contains="invalid credentials")
        # tampered payload, same signature
        tok = self.keys.token("RS256").split(".")
        claims = json.loads(auth_kit.base64.urlsafe_b64decode(tok[1] + "=="))
        claims["scope"] = "admin"
        tok[1] = auth_kit.b64u(json.dumps(claims).encode())
        self.assert401(post(self.port, "principal_service.admin", headers=bearer(".".join(tok))))

    def test_jwt_cached_until_it_expires_and_not_after(self):
        """A verified JWT is cached per loop, never past exp plus the 30 s
        leeway: a token with 3 s of leeway left is let in, repeatedly and
        from many threads, then refused once the leeway has passed."""
        import time as _t
        exp = int(_t.time()) - 27
        tok = self.keys.token("RS256", sub="short-lived", exp=exp)
        want = '[[{"sub": "short-lived", "scopes": ["things:write"]}], {"admin": false}]'
        self.assertOk(self.whoami(bearer(tok)), want)
        results = []

        def call():
            r = self.whoami(bearer(tok))
            results.append((r.status, r.text))
        threads = [threading.Thread(target=call) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Answered inside the leeway (a stalled machine may pass it: then
        # some are 401, also right).
        if _t.time() < exp + 30:
            self.assertEqual(results, [(200, want)] * 16)
        r = harness.wait_for(lambda: (lambda r: r if r.status == 401 else None)(
            self.whoami(bearer(tok))), 15, what="the expired JWT refused")
        self.assert401(r)
        # With the authorizer configured a token the gateway refuses is
        # asked there (auth_service says null): the whole answer.
        self.assertEqual(r.json(), {"error": {
            "code": 401, "type": "unauthenticated",
            "message": "invalid credentials: the authorizer refused the credentials"}})

    # -- malformed headers

    def test_malformed_authorization_headers(self):
        for value in ["", "Bearer", "Bearer ", "Basic", "Basic ", "Basic !!!!", "Basic Ym9i",
                      "Basic " + auth_kit.base64.b64encode(b":pw").decode(),
                      "Basic " + auth_kit.base64.b64encode(b"bob\x01:pw").decode(),
                      "Basic Ym9iOmJvYi1wdw", "Digest x=1", "Bearer a b", "Bearer \"x\"",
                      "Bearer " + "a" * 9000, "Basic " + "QUFB" * 3000, "bearer" + "x" * 50]:
            with self.subTest(value=value[:40]):
                self.assert401(self.whoami({"Authorization": value}))
        # also on a public rpc: credentials that are sent are checked
        self.assert401(post(self.port, "principal_service.open", headers={"Authorization": "Bearer"}))
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')

    def test_scheme_is_case_insensitive(self):
        self.assertOk(self.whoami({"Authorization": "bearer " + READER}),
                      '[[{"sub": "reader", "scopes": []}], {"admin": false}]')
        self.assertOk(self.whoami({"Authorization": "BASIC " + auth_kit.basic("bob", "bob-pw")[6:]}),
                      '[[{"sub": "bob", "scopes": ["admin"]}], {"admin": true}]')

    # -- the authorizer

    def authorize_count(self):
        return self.nc.request("auth_service.count", b"").json()[0][0]

    def test_authorizer_verdicts_are_cached(self):
        before = self.authorize_count()
        for _ in range(5):
            self.assertOk(self.whoami(bearer("ok-carol-admin-cached")),
                          '[[{"sub": "carol", "scopes": ["admin", "cached"]}], {"admin": true}]')
        for _ in range(3):
            self.assert401(self.whoami(bearer("no-mallory-cached")), contains="authorizer refused")
        # one call per verdict
        self.assertEqual(self.authorize_count() - before, 2)

    def test_authorizer_fails_closed(self):
        self.assertHttpError(self.whoami(bearer("fail-x")), 503, "unavailable",
                             contains="authorizer")
        self.assertHttpError(self.whoami(bearer("slow-x")), 503, "unavailable",
                             contains="authorizer")
        # errors are not cached: a retry asks again
        before = self.authorize_count()
        self.assertHttpError(self.whoami(bearer("fail-x")), 503)
        self.assertEqual(self.authorize_count(), before + 1)

    def test_authorizer_asked_once_for_a_burst(self):
        # 20 requests with one credential the gateway has not seen, at once:
        # one authorizer call answers all of them (one loop here). A slow
        # authorizer (no answer within timeout_s) keeps them all waiting on
        # that one call, and its failure is everybody's: 503, nothing cached.
        for token, status in (("slow-burst", 503), ("ok-burst-a", 200)):
            with self.subTest(token=token):
                before = self.authorize_count()
                with concurrent.futures.ThreadPoolExecutor(20) as ex:
                    rs = list(ex.map(lambda _: self.whoami(bearer(token)), range(20)))
                self.assertEqual(sorted({r.status for r in rs}), [status], [r.describe() for r in rs])
                self.assertEqual(len({r.body for r in rs}), 1)
                self.assertEqual(self.authorize_count() - before, 1)

    def test_zz_authorizer_killed(self):
        # a cached verdict survives; a new credential fails closed
        for _ in range(2):
            self.assertEqual(self.whoami(bearer("ok-dora-k")).status, 200)
        self.authz.stop()
        self.authz.signalled = True
        self.assertHttpError(self.whoami(bearer("ok-erin")), 503, "unavailable",
                             contains="authorizer")
        for _ in range(4):
            self.assertEqual(self.whoami(bearer("ok-dora-k")).status, 200)
        # static credentials do not need it
        self.assertEqual(self.whoami(bearer(ALICE)).status, 200)


class RawAuthorizerTest(harness.IntegrationCase):
    """An authorizer that is not a natsrpc service may answer anything: what
    is not [[principal or null], {}] (not JSON, not that shape) is no
    verdict. The call is refused with 503 and nothing is cached, so the
    next call, once the authorizer answers properly, gets in."""

    @classmethod
    def setUpClass(cls):
        auth_kit.principal_stack(cls, "auth-raw", lambda stack, keys: auth_kit.write_auth_file(
            stack.dir, keys, jwt=False,
            authorizer={"rpc": "raw_authz.authorize", "ttl_s": 300, "timeout_s": 1}))

    def test_an_answer_that_is_no_verdict_is_503_and_not_kept(self):
        answers = [b"not json", b"[7, {}]", b'{"sub": "x"}',
                   b'[[{"sub": "carol", "scopes": ["admin"]}], {}]']
        with harness.Responder(self.nats.url, "raw_authz.authorize", lambda r, m: answers[0]):
            for junk in answers[:-1]:
                r = post(self.port, "principal_service.whoami", headers=bearer("opaque-token-1"))
                self.assertEqual((r.status, json.loads(r.body)), (503, {"error": {
                    "code": 503, "type": "unavailable",
                    "message": "cannot check the credentials now: the authorizer "
                               "raw_authz.authorize answered something else than a principal "
                               "or null"}}), junk)
                answers.pop(0)
            self.assertOk(post(self.port, "principal_service.whoami",
                               headers=bearer("opaque-token-1")),
                          '[[{"sub": "carol", "scopes": ["admin"]}], {"admin": true}]')


class FloodedCatalogTest(harness.IntegrationCase):
    """A responder floods each $SRV.INFO gather past the 4,096 replies one
    gather takes. A service's own reply may then be among those ignored, so
    an rpc the gather does not list is not taken for undeclared (open to any
    signed-in caller): 503 until a gather is whole again. Rpcs it knows go
    on as before."""

    @classmethod
    def setUpClass(cls):
        auth_kit.principal_stack(cls, "auth-flood", lambda stack, keys: auth_kit.write_auth_file(
            stack.dir, keys, tokens={READER: {"sub": "reader"}}))

    def refresh(self):
        return len(harness.services_listed(self.port))

    def unknown(self):
        r = post(self.port, "nosuch_service.nothing", headers=bearer(READER))
        return r.status, json.loads(r.body)

    def test_an_unlisted_rpc_is_503_while_gathers_are_flooded(self):
        self.assertEqual(self.refresh(), 1)
        self.assertEqual(self.unknown()[0], 404)  # no responder: the gate let it through

        def flood(r, m):
            return harness.info_flood(r.nc, m.reply, ("flood%d" % i for i in range(5000)))
        with harness.Responder(self.nats.url, "$SRV.INFO", flood):
            # Each call of an unknown rpc gathers; on a busy machine the
            # flood may not reach the first one in time, so ask until one
            # was flooded, and check that whole answer.
            got = []
            harness.wait_for(lambda: got.append(self.unknown()) or got[-1][0] == 503, 20,
                             what="a call decided after a flooded gather")
            self.assertEqual(got[-1], (503, {"error": {
                "code": 503, "type": "unavailable",
                "message": "the gateway cannot tell nosuch_service.nothing's access now: its "
                           "last $SRV.INFO gather was flooded"}}))
            # before the flood reached a gather: forwarded, and no responder
            self.assertLessEqual({status for status, _ in got}, {404, 503}, got)
            self.assertOk(post(self.port, "principal_service.whoami", headers=bearer(READER)),
                          '[[{"sub": "reader", "scopes": []}], {"admin": false}]')
        self.assertEqual(self.refresh(), 1)
        self.assertEqual(self.unknown()[0], 404)


class AuthFileTest(harness.IntegrationCase):
    """A credentials file that does not load stops the gateway (exit 2)."""

    @classmethod
    def setUpClass(cls):
        cls.keys = auth_kit.Keys()
        cls.start_stack("auth_file", lambda stack: None)

    def run_gateway(self, path):
        env = dict(os.environ, GATEWAY_AUTH=path, GATEWAY_PORT="0",
                   NATS_URL="nats://127.0.0.1:1")
        p = subprocess.run([harness.binary("natsrpc-gateway")], env=env, capture_output=True,
                           text=True, timeout=30)
        return p.returncode, p.stderr

    def write(self, name, doc):
        path = os.path.join(self.stack.dir, name)
        with open(path, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def test_bad_files(self):
        auth_kit.write_auth_file(self.stack.dir, self.keys, tokens={ALICE: {"sub": "a"}})
        good_hash = auth_kit.crypt_hash("pw", "$2b$")
        jwt = {"jwks_file": "jwks.json", "issuer": "i", "audience": "a"}
        cases = {
            "missing": (None, "cannot read"),
            "not json": ("{", "not JSON"),
            "array": ("[]", "must be a JSON object"),
            "empty": ({}, "no credentials"),
            "unknown key": ({"tokens": {ALICE: {"sub": "a"}}, "tokenz": {}}, "unknown key 'tokenz'"),
            "unknown token key": ({"tokens": {ALICE: {"sub": "a", "scope": []}}}, "unknown key 'scope'"),
            "short token": ({"tokens": {"short": {"sub": "a"}}}, "16 to 4096"),
            "no sub": ({"tokens": {ALICE: {}}}, "\"sub\""),
            "bad scope": ({"tokens": {ALICE: {"sub": "a", "scopes": ["a b"]}}}, "scope tokens"),
            "bad hash": ({"basic": {"bob": {"hash": "plaintext"}}}, "basic.bob: \"hash\""),
            "md5 hash": ({"basic": {"bob": {"hash": "$1$abc$defghijklmnopqrstuvwx"}}}, "bcrypt"),
            "short bcrypt": ({"basic": {"bob": {"hash": good_hash[:-1]}}}, "bcrypt"),
            "user with colon": ({"basic": {"b:ob": {"hash": good_hash}}}, "without ':'"),
            "no jwks": ({"jwt": dict(jwt, jwks_file="nope.json")}, "cannot read"),
            "bad jwks": ({"jwt": dict(jwt, jwks_file="auth.json")}, "not a JWKS"),
            "no issuer": ({"jwt": {"jwks_file": "jwks.json", "audience": "a"}}, "\"issuer\""),
            "jwt unknown key": ({"jwt": dict(jwt, leeway=5)}, "unknown key 'leeway'"),
            "bad rpc": ({"authorizer": {"rpc": "$SRV.INFO"}}, "<service>.<method>"),
            "bad ttl": ({"authorizer": {"rpc": "a.b", "ttl_s": -1}}, "ttl_s"),
            "duplicate": ('{"tokens": {}, "tokens": {}}', "duplicate"),
        }
        for what, (doc, message) in cases.items():
            with self.subTest(what=what):
                path = os.path.join(self.stack.dir, "missing.json") if doc is None else \
                    self.write("case.json", doc)
                rc, err = self.run_gateway(path)
                self.assertEqual(rc, 2, err)
                self.assertIn("GATEWAY_AUTH=", err)
                self.assertIn(message, err)

    def test_a_private_key_in_the_jwks_is_refused(self):
        from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: F401
        priv = self.keys.rsa.private_numbers()
        pub = priv.public_numbers
        jwks = {"keys": [{"kty": "RSA", "n": auth_kit._int_b64u(pub.n), "e": auth_kit._int_b64u(pub.e),
                          "d": auth_kit._int_b64u(priv.d), "p": auth_kit._int_b64u(priv.p),
                          "q": auth_kit._int_b64u(priv.q), "dp": auth_kit._int_b64u(priv.dmp1),
                          "dq": auth_kit._int_b64u(priv.dmq1), "qi": auth_kit._int_b64u(priv.iqmp)}]}
        self.write("priv.json", jwks)
        path = self.write("case.json", {"jwt": {"jwks_file": "priv.json", "issuer": "i",
                                                "audience": "a"}})
        rc, err = self.run_gateway(path)
        self.assertEqual(rc, 2, err)
        self.assertIn("private key", err)


class FrozenServiceFloodTest(harness.IntegrationCase):
    """A frozen service keeps the access it declared while another responder
    answers every $SRV.INFO under ever new names: those newcomers, missing
    from the next gather, must not push the frozen service's declaration out
    of the gateway's record (its scoped rpc would then need credentials only)."""

    @classmethod
    def setUpClass(cls):
        auth_kit.principal_stack(cls, "auth-frozen-flood", lambda stack, keys: auth_kit.write_auth_file(
            stack.dir, keys, tokens={READER: {"sub": "reader"}}))

    def listed(self):
        return harness.services_listed(self.port)

    def assert_reader_refused(self):
        r = post(self.port, "principal_service.admin", headers=bearer(READER), timeout=10)
        self.assertEqual(r.json(), {"error": {
            "code": 403, "type": "permission_denied",
            "message": "principal_service.admin needs the scopes 'admin'; reader has ''"}},
            r.describe())
        self.assertEqual(r.status, 403)

    def test_newcomers_do_not_push_out_a_frozen_services_access(self):
        self.assertIn("principal_service", self.listed())
        self.assert_reader_refused()
        self.svc.signal(signal.SIGSTOP)
        self.addCleanup(self.svc.signal, signal.SIGCONT)

        def flood(r, m):  # new names at every gather
            return harness.info_flood(r.nc, m.reply, ("new%d_%d" % (r.count, i) for i in range(1100)))
        with harness.Responder(self.nats.url, "$SRV.INFO", flood):
            # principal_service misses each gather; the newcomers of one miss
            # the next. Three that the flood reached (a busy machine may
            # deliver part of one late), within ten.
            reached = 0
            for _ in range(10):
                names = self.listed()
                self.assertNotIn("principal_service", names)
                reached += len(names) > 1000
                if reached == 3:
                    break
            self.assertEqual(reached, 3, "the flood did not reach three gathers")
        self.assert_reader_refused()


if __name__ == "__main__":
    import unittest
    unittest.main()
