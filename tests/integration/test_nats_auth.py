"""NATS credentials and TLS in every natsrpc process, against a real
nats-server with users, permissions, a token, nkeys, an operator with
.creds files and TLS.

Every process reads NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED,
NATS_CREDS, NATS_CA, NATS_CERT/NATS_KEY and NATS_TLS_HOSTNAME:
  - with credentials the server accepts, services serve, the gateway and
    the CLI call;
  - credentials the server refuses, a certificate it does not trust or a
    setting that cannot work stop the process at start (exit status 1 for
    services, the gateway; 3 for the CLI) with a line naming the variable,
    never the secret;
  - a service whose user may not subscribe to its own subjects stops with
    exit status 1 and says which subscription nats-server refused.
Keys and certificates are made at test time with openssl; nothing secret
is committed.
"""

import base64
import hashlib
import json
import os
import subprocess
import threading
import time
import unittest

import harness
from harness import http_call, post

HELLO = '[["Hello, Bob"], {}]'
START_EXIT = 20.0  # a process refused at start exits within this


def crc16(data):
    """CRC-16/XMODEM, as nkeys append it."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def nkey_encode(raw):
    c = crc16(raw)
    return base64.b32encode(raw + bytes([c & 0xFF, c >> 8])).decode().rstrip("=")


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


# nkey prefixes: operator "O", account "A", user "U"
OPERATOR, ACCOUNT, USER = 14 << 3, 0, 20 << 3


def make_key(directory, name, prefix):
    """A fresh ed25519 key pair: (PEM path for openssl, seed "S.", public
    key) of the nkey kind prefix."""
    pem = os.path.join(directory, name + ".pem")
    openssl("genpkey", "-algorithm", "ed25519", "-out", pem, cwd=directory)
    der = subprocess.run(["openssl", "pkey", "-in", pem, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    pub = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    seed = nkey_encode(bytes([0x90 | (prefix >> 5), (prefix & 31) << 3]) + der[-32:])
    return pem, seed, nkey_encode(bytes([prefix]) + pub[-32:])


def b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def nats_jwt(directory, signer_pem, issuer, subject, name, nats):
    """A NATS JWT (v2) for subject, signed with ed25519 by issuer's key."""
    claims = {"iat": int(time.time()), "iss": issuer, "name": name, "sub": subject, "nats": nats}
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims).encode()).digest()
                                     ).decode().rstrip("=")
    signed = "%s.%s" % (b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode()),
                        b64url(json.dumps(claims).encode()))
    msg = os.path.join(directory, "jwt-to-sign")
    with open(msg, "w") as f:
        f.write(signed)
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", signer_pem, "-rawin", "-in", msg],
                         check=True, capture_output=True).stdout
    return signed + "." + b64url(sig)


ACCOUNT_LIMITS = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                  "wildcards": True, "conn": -1, "leaf": -1}


def operator_setup(directory):
    """An operator with two accounts (ours and the system account) as
    nats-server configuration text, and a function making .creds files of
    users of our account (or of an account the server does not know)."""
    op_pem, _, op = make_key(directory, "operator", OPERATOR)
    acc_pem, _, acc = make_key(directory, "account", ACCOUNT)
    sys_pem, _, sys_acc = make_key(directory, "system", ACCOUNT)
    stranger_pem, _, stranger = make_key(directory, "stranger", ACCOUNT)
    op_jwt = nats_jwt(directory, op_pem, op, op, "natsrpc-test", {"type": "operator", "version": 2})
    account = {"limits": ACCOUNT_LIMITS, "default_permissions": {"pub": {}, "sub": {}},
               "type": "account", "version": 2}
    config = ('operator: "%s"\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n'
              '  %s: "%s"\n  %s: "%s"\n}\n'
              % (op_jwt, sys_acc, acc, nats_jwt(directory, op_pem, op, acc, "app", account),
                 sys_acc, nats_jwt(directory, op_pem, op, sys_acc, "SYS", account)))

    def creds(name, known=True):
        _, seed, pub = make_key(directory, name, USER)
        signer, issuer = (acc_pem, acc) if known else (stranger_pem, stranger)
        user = nats_jwt(directory, signer, issuer, pub, name,
                        {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                         "type": "user", "version": 2})
        path = os.path.join(directory, name + ".creds")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                    "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n"
                    % (user, seed))
        return path, seed
    return config, creds


def user_nkey(directory, name):
    """A fresh ed25519 key pair as a user nkey: (seed file path, public key)."""
    pem, seed, pub = make_key(directory, name, USER)
    os.unlink(pem)
    path = os.path.join(directory, name + ".nk")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(seed + "\n")
    return path, pub


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=natsrpc test CA " + name, "-keyout", name + "-key.pem",
            "-out", name + ".pem", cwd=directory)
    return os.path.join(directory, name + ".pem")


def make_cert(directory, ca, name, san):
    """A certificate for name signed by the CA ca (made by make_ca)."""
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
            "-keyout", name + "-key.pem", "-out", name + ".csr", cwd=directory)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + "-key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", name + ".pem", cwd=directory)
    return os.path.join(directory, name + ".pem"), os.path.join(directory, name + "-key.pem")


class AuthCase(harness.IntegrationCase):
    """Helpers: processes that must stop at start, and secrets in logs."""

    def start_refused(self, binary_name, env, args=()):
        """Starts a binary that must exit at start; returns (status, log)."""
        e = {"NATS_URL": self.nats.url}
        e.update(env)
        p = self.stack.spawn(binary_name, [harness.binary(binary_name)] + list(args), env=e)
        rc = p.wait(START_EXIT)
        p.signalled = True  # its exit is what we test
        self.assertIsNotNone(rc, "%s did not exit at start\n%s" % (binary_name, p.log_tail()))
        return rc, p.log_text()

    def stop(self, p):
        """Stops a process a test started for itself; it must exit 0."""
        p.signalled = True
        self.assertEqual(p.stop(), 0, p.log_tail())

    def restart_with_a_call_in_flight(self, body):
        """nats-server stops while a hello_sleep(body) call through the
        gateway (self.port, one loop: each loop reconnects on its own) is in
        flight, and starts again: the call is answered, 200 or 503, never
        left hanging, and calls through the gateway work again."""
        out = []
        t = threading.Thread(target=lambda: out.append(
            post(self.port, "greeting_service.hello_sleep", body, timeout=30)))
        t.start()
        # The call is in flight once the gateway counts it next to the
        # metrics request itself.
        harness.wait_for(lambda: "\nnatsrpc_gateway_requests_in_flight 2\n" in
                         harness.http_call(self.port, "GET", "/metrics").text, 10,
                         what="the call in flight")
        self.nats.stop()
        t.join(30)
        self.assertFalse(t.is_alive())
        # 503 when the gateway gave up on the lost connection, or the reply
        # once the link was back.
        if out[0].status == 200:
            self.assertEqual(out[0].text, HELLO, out[0].describe())
        else:
            self.assertEqual(out[0].status, 503, out[0].describe())
        self.nats.start()
        harness.wait_for(lambda: post(self.port, "greeting_service.hello", '[["Bob"]]',
                                      timeout=5).status == 200, 30,
                         what="a call through the gateway after the restart")

    def cli(self, *args, env=None):
        e = dict(os.environ, NATS_URL=self.nats.url)
        for k in ("NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_NKEY_SEED", "NATS_CREDS",
                  "NATS_CA", "NATS_CERT", "NATS_KEY", "NATS_TLS_HOSTNAME", "NATS_INBOX_PREFIX"):
            e.pop(k, None)
        e.update(env or {})
        r = subprocess.run([harness.binary("natsrpc")] + list(args), env=e, capture_output=True,
                           timeout=30)
        r.out, r.err = r.stdout.decode(), r.stderr.decode()
        r.what = "natsrpc %s -> %d\nstdout: %s\nstderr: %s" % (" ".join(args), r.returncode,
                                                               r.out, r.err)
        return r

    def assertCall(self, env):
        r = self.cli("--json", "call", "greeting_service.hello", "Bob", env=env)
        self.assertEqual((r.returncode, r.out.strip()), (0, HELLO), r.what)

    def assertNoSecret(self, secrets):
        for p in self.stack.procs:
            text = p.log_text()
            for s in secrets:
                self.assertNotIn(s, text, "%s logged a secret" % p.name)


class UserPasswordTest(AuthCase):
    """Users with passwords and per-process permissions."""

    @classmethod
    def setUpClass(cls):
        cls.pw = {u: harness.rand_token(20) for u in ("greeting", "lockedout", "gateway", "cli")}
        config = """
authorization {
  users = [
    {user: greeting, password: "%(greeting)s", permissions: {
      subscribe: {allow: ["greeting_service.>", "$SRV.>"]},
      publish: {allow: ["$SRV.>"]}, allow_responses: true}}
    {user: lockedout, password: "%(lockedout)s", permissions: {
      subscribe: {allow: ["$SRV.>"]}, allow_responses: true}}
    {user: gateway, password: "%(gateway)s", permissions: {
      publish: {allow: ["greeting_service.*", "$SRV.>", "events.>"]},
      subscribe: {allow: ["_INBOX.>", "events.>"]}}}
    {user: cli, password: "%(cli)s"}
  ]
}
""" % cls.pw

        def start(stack):
            cls.nats = stack.nats(config=config)
            cls.svc = stack.service("greeting_service", cls.nats, env=cls.env("greeting"))
        cls.start_stack("nats-auth-user", start)

    @classmethod
    def env(cls, user, password=None):
        return {"NATS_USER": user, "NATS_PASSWORD": password or cls.pw[user]}

    def test_service_serves_with_its_credentials(self):
        self.assertCall(self.env("cli"))
        log = self.svc.log_text()
        self.assertIn("NATS at %s with user 'greeting' (NATS_USER, NATS_PASSWORD)" % self.nats.url,
                      log)
        self.assertNoSecret(self.pw.values())

    def test_gateway_with_credentials(self):
        gw, port = self.stack.gateway(self.nats, env=self.env("gateway"))
        self.assertOk(post(port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        # The gateway's user may not call what its permissions leave out:
        # nats-server drops the publish, the caller gets no answer in time.
        r = post(port, "other_service.x", "[]", headers={"X-Timeout": "0.5"})
        self.assertIn(r.status, (404, 504), r.describe())
        self.assertIn('Permissions Violation for Publish to "other_service.x"', gw.log_text())
        self.assertTrue(gw.alive(), "a refused publish must not stop the gateway")
        self.stop(gw)
        self.assertNoSecret(self.pw.values())

    def test_credentials_in_the_url(self):
        url = "nats://greeting:%s@127.0.0.1:%d" % (self.pw["greeting"], self.nats.port)
        p = self.stack.service("greeting_service", self.nats, env={"NATS_URL": url},
                               replicas_expected=2)
        self.assertCall(self.env("cli"))
        self.assertIn("NATS at nats://***@127.0.0.1:%d with no credentials" % self.nats.port,
                      p.log_text())
        self.stop(p)
        self.assertNoSecret(self.pw.values())

    def test_wrong_password_stops_the_service_at_start(self):
        rc, log = self.start_refused("greeting_service", self.env("greeting", "wrong-pw-123"))
        self.assertEqual(rc, 1, log)
        self.assertIn("ERROR greeting_service: NATS at %s refused the connection (user 'greeting' "
                      "(NATS_USER, NATS_PASSWORD)): Authorization Violation\n" % self.nats.url, log)
        self.assertNotIn("wrong-pw-123", log)

    def test_wrong_password_stops_the_gateway_at_start(self):
        rc, log = self.start_refused("natsrpc-gateway",
                                     dict(self.env("gateway", "wrong-pw-456"),
                                          GATEWAY_PORT=str(harness.free_port())))
        self.assertNotEqual(rc, 0, log)
        self.assertIn("refused the connection (user 'gateway' (NATS_USER, NATS_PASSWORD)): "
                      "Authorization Violation", log)
        self.assertNotIn("wrong-pw-456", log)

    def test_wrong_password_cli(self):
        r = self.cli("call", "greeting_service.hello", "Bob", env=self.env("cli", "wrong-pw-789"))
        self.assertEqual(r.returncode, 3, r.what)
        self.assertEqual(r.err, "natsrpc: cannot connect to NATS: NATS at %s refused the connection "
                                "(user 'cli' (NATS_USER, NATS_PASSWORD)): Authorization Violation\n"
                         % self.nats.url, r.what)
        self.assertNotIn("wrong-pw-789", r.out + r.err)

    def test_subscription_refused_stops_the_service(self):
        rc, log = self.start_refused("greeting_service", self.env("lockedout"))
        self.assertEqual(rc, 1, log)
        # Which of the two rpcs nats-server names first is its choice.
        self.assertIn('ERROR greeting_service: NATS refused: Permissions Violation for Subscription '
                      'to "greeting_service.hello', log)
        self.assertIn("ERROR greeting_service: NATS refused a subscription of greeting_service: "
                      "stopping", log)

    def test_settings_that_cannot_work(self):
        missing = os.path.join(self.stack.dir, "no-such-file")
        cases = [
            ({"NATS_USER": "greeting"}, "NATS_USER is set without NATS_PASSWORD"),
            ({"NATS_PASSWORD": "x"}, "NATS_PASSWORD is set without NATS_USER"),
            (dict(self.env("greeting"), NATS_TOKEN="t"),
             "NATS_USER and NATS_TOKEN are both set: use one way to authenticate to NATS"),
            ({"NATS_NKEY_SEED": missing},
             "NATS_NKEY_SEED: cannot read '%s': No such file or directory" % missing),
            ({"NATS_CREDS": missing},
             "NATS_CREDS: cannot read '%s': No such file or directory" % missing),
            ({"NATS_CA": missing}, "NATS_CA: cannot read '%s': No such file or directory" % missing),
            ({"NATS_CERT": missing}, "NATS_CERT is set without NATS_KEY"),
        ]
        for env, message in cases:
            with self.subTest(env=env):
                rc, log = self.start_refused("greeting_service", env)
                self.assertEqual(rc, 1, log)
                self.assertIn("ERROR greeting_service: %s\n" % message, log)
                rc, log = self.start_refused("natsrpc-gateway",
                                             dict(env, GATEWAY_PORT=str(harness.free_port())))
                self.assertNotEqual(rc, 0, log)
                self.assertIn(message, log)
                r = self.cli("call", "greeting_service.hello", "Bob", env=env)
                self.assertEqual((r.returncode, r.err),
                                 (3, "natsrpc: cannot connect to NATS: %s\n" % message), r.what)

    def test_cli_refused_publish_and_subscription(self):
        env = self.env("greeting")
        r = self.cli("pub", "other_service.x", "[]", env=env)
        self.assertEqual(r.returncode, 1, r.what)
        self.assertIn('natsrpc: publish on other_service.x failed: Permissions Violation for '
                      'Publish to "other_service.x"\n', r.err)
        r = self.cli("sub", "other_service.x", "--count", "1", env=env)
        self.assertEqual(r.returncode, 1, r.what)
        self.assertIn('natsrpc: subscribe to other_service.x failed: Permissions Violation for '
                      'Subscription to "other_service.x"\n', r.err)

    def test_concurrent_callers(self):
        results = []

        def call():
            r = self.cli("--json", "call", "greeting_service.hello", "Bob", env=self.env("cli"))
            results.append((r.returncode, r.out.strip()))
        threads = [threading.Thread(target=call) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [(0, HELLO)] * 12)


class ServerRestartTest(AuthCase):
    """nats-server goes away with a call in flight and comes back: service
    and gateway connect again with their credentials."""

    @classmethod
    def setUpClass(cls):
        cls.pw = harness.rand_token(20)
        config = 'authorization { user: app, password: "%s" }\n' % cls.pw

        def start(stack):
            cls.nats = stack.nats(config=config)
            env = {"NATS_USER": "app", "NATS_PASSWORD": cls.pw}
            # ready once the rpc the test calls is subscribed, not only hello
            cls.svc = stack.service("greeting_service", cls.nats, env=env,
                                    ready_subject="greeting_service.hello_sleep")
            # One loop: each loop reconnects on its own, so with more a call
            # right after the first 200 could still meet one that has not.
            cls.gw, cls.port = stack.gateway(cls.nats, env=dict(env, GATEWAY_THREADS="1"))
        cls.start_stack("nats-auth-restart", start)

    def test_restart_with_a_call_in_flight(self):
        self.restart_with_a_call_in_flight('[["Bob"]]')
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        self.assertCall({"NATS_USER": "app", "NATS_PASSWORD": self.pw})
        self.assertNoSecret([self.pw])


class TokenTest(AuthCase):
    @classmethod
    def setUpClass(cls):
        cls.token = harness.rand_token(24)

        def start(stack):
            cls.nats = stack.nats(config='authorization { token: "%s" }\n' % cls.token)
            cls.svc = stack.service("greeting_service", cls.nats, env={"NATS_TOKEN": cls.token})
        cls.start_stack("nats-auth-token", start)

    def test_token(self):
        self.assertCall({"NATS_TOKEN": self.token})
        gw, port = self.stack.gateway(self.nats, env={"NATS_TOKEN": self.token})
        self.assertOk(post(port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        self.assertIn("with a token (NATS_TOKEN)", self.svc.log_text())
        self.stop(gw)
        self.assertNoSecret([self.token])

    def test_wrong_token(self):
        rc, log = self.start_refused("greeting_service", {"NATS_TOKEN": "not-the-token"})
        self.assertEqual(rc, 1, log)
        self.assertIn("refused the connection (a token (NATS_TOKEN)): Authorization Violation",
                      log)
        self.assertNotIn("not-the-token", log)
        r = self.cli("call", "greeting_service.hello", "Bob")
        self.assertEqual(r.returncode, 3, r.what)
        self.assertIn("Authorization Violation", r.err)


class NkeyTest(AuthCase):
    """nkeys: the server knows public keys; processes sign with the seed in
    the file NATS_NKEY_SEED names."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.svc_seed, cls.svc_pub = user_nkey(stack.dir, "svc")
            cls.cli_seed, cls.cli_pub = user_nkey(stack.dir, "cli")
            cls.other_seed, cls.other_pub = user_nkey(stack.dir, "other")
            config = """
authorization {
  users = [
    {nkey: %s, permissions: {subscribe: {allow: ["greeting_service.>", "$SRV.>"]},
                             publish: {allow: ["$SRV.>"]}, allow_responses: true}}
    {nkey: %s}
  ]
}
""" % (cls.svc_pub, cls.cli_pub)
            cls.nats = stack.nats(config=config)
            cls.svc = stack.service("greeting_service", cls.nats,
                                    env={"NATS_NKEY_SEED": cls.svc_seed})
        cls.start_stack("nats-auth-nkey", start)

    def seeds(self):
        out = []
        for path in (self.svc_seed, self.cli_seed, self.other_seed):
            with open(path) as f:
                out.append(f.read().strip())
        return out

    def test_nkey(self):
        self.assertCall({"NATS_NKEY_SEED": self.cli_seed})
        self.assertIn("with nkey %s (NATS_NKEY_SEED)" % self.svc_pub, self.svc.log_text())
        gw, port = self.stack.gateway(self.nats, env={"NATS_NKEY_SEED": self.cli_seed})
        self.assertOk(post(port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        self.stop(gw)
        self.assertNoSecret(self.seeds())

    def test_unknown_nkey(self):
        rc, log = self.start_refused("greeting_service", {"NATS_NKEY_SEED": self.other_seed})
        self.assertEqual(rc, 1, log)
        self.assertIn("refused the connection (nkey %s (NATS_NKEY_SEED)): Authorization Violation"
                      % self.other_pub, log)
        self.assertNoSecret(self.seeds())

    def test_damaged_seed(self):
        with open(self.cli_seed) as f:
            seed = f.read().strip()
        bad = os.path.join(self.stack.dir, "bad.nk")
        with open(bad, "w") as f:
            f.write(seed[:-3] + ("A" if seed[-3] != "A" else "B") + seed[-2:] + "\n")
        rc, log = self.start_refused("greeting_service", {"NATS_NKEY_SEED": bad})
        self.assertEqual(rc, 1, log)
        self.assertIn("NATS_NKEY_SEED: the seed in '%s' is its checksum does not match" % bad, log)


class CredsFileTest(AuthCase):
    """A server in operator mode (JWTs made now, signed with openssl):
    processes authenticate with the .creds file NATS_CREDS names."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            config, creds = operator_setup(stack.dir)
            cls.svc_creds, cls.svc_seed = creds("svc")
            cls.cli_creds, cls.cli_seed = creds("cli")
            cls.stranger_creds, cls.stranger_seed = creds("stranger", known=False)
            cls.nats = stack.nats(config=config)
            cls.svc = stack.service("greeting_service", cls.nats,
                                    env={"NATS_CREDS": cls.svc_creds})
        cls.start_stack("nats-auth-creds", start)

    def test_creds_file(self):
        self.assertCall({"NATS_CREDS": self.cli_creds})
        self.assertIn("with credentials file %s (NATS_CREDS)" % self.svc_creds,
                      self.svc.log_text())
        gw, port = self.stack.gateway(self.nats, env={"NATS_CREDS": self.cli_creds})
        self.assertOk(post(port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        self.stop(gw)
        self.assertNoSecret([self.svc_seed, self.cli_seed])

    def test_user_of_an_unknown_account(self):
        rc, log = self.start_refused("greeting_service", {"NATS_CREDS": self.stranger_creds})
        self.assertEqual(rc, 1, log)
        self.assertIn("refused the connection (credentials file %s (NATS_CREDS)): Authorization "
                      "Violation" % self.stranger_creds, log)
        self.assertNotIn(self.stranger_seed, log)


class TlsTest(AuthCase):
    """TLS with a CA and client certificates made now; the server verifies
    client certificates."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            d = stack.dir
            cls.ca = make_ca(d, "ca")
            cls.other_ca = make_ca(d, "otherca")
            cls.server_cert, cls.server_key = make_cert(d, "ca", "server",
                                                        "DNS:localhost,IP:127.0.0.1")
            cls.cert, cls.key = make_cert(d, "ca", "client", "DNS:natsrpc-client")
            config = """
tls {
  cert_file: "%s"
  key_file: "%s"
  ca_file: "%s"
  verify: true
  timeout: 2
}
""" % (cls.server_cert, cls.server_key, cls.ca)
            cls.nats = stack.nats(config=config)
            cls.svc = stack.service("greeting_service", cls.nats, env=cls.env())
        cls.start_stack("nats-auth-tls", start)

    @classmethod
    def env(cls, **kw):
        e = {"NATS_CA": cls.ca, "NATS_CERT": cls.cert, "NATS_KEY": cls.key}
        e.update(kw)
        return e

    def test_tls(self):
        self.assertCall(self.env())
        tls_url = "tls://127.0.0.1:%d" % self.nats.port
        self.assertCall(self.env(NATS_URL=tls_url))
        self.assertCall(self.env(NATS_URL=tls_url, NATS_TLS_HOSTNAME="localhost"))
        gw, port = self.stack.gateway(self.nats, env=self.env(NATS_URL=tls_url))
        self.assertOk(post(port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        self.stop(gw)

    def test_wrong_ca_refused(self):
        rc, log = self.start_refused("greeting_service", self.env(NATS_CA=self.other_ca))
        self.assertEqual(rc, 1, log)
        self.assertIn("refused the connection (TLS with the CA %s (NATS_CA)" % self.other_ca, log)
        self.assertIn("SSL handshake error: 20:unable to get local issuer certificate", log)
        r = self.cli("call", "greeting_service.hello", "Bob", env=self.env(NATS_CA=self.other_ca))
        self.assertEqual(r.returncode, 3, r.what)
        self.assertIn("SSL handshake error: 20:unable to get local issuer certificate", r.err)

    def test_wrong_server_name_refused(self):
        rc, log = self.start_refused("greeting_service",
                                     self.env(NATS_TLS_HOSTNAME="nats.elsewhere.example"))
        self.assertEqual(rc, 1, log)
        self.assertIn("server name nats.elsewhere.example (NATS_TLS_HOSTNAME)): ", log)

    def test_plain_connection_refused(self):
        rc, log = self.start_refused("greeting_service", {})
        self.assertEqual(rc, 1, log)
        self.assertIn("refused the connection (no credentials): ", log)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY_CONF = os.path.join(ROOT, "deploy", "nats-server.conf")
DEPLOY_USERS = ("greeting_service", "thing_service", "websocket_test", "gateway", "admin")


def deploy_config(passwords):
    """deploy/nats-server.conf as shipped, with passwords in place of the
    environment variables it reads them from."""
    with open(DEPLOY_CONF) as f:
        text = f.read()
    for user in DEPLOY_USERS:
        var = "NATS_ADMIN_PASSWORD" if user == "admin" else user.upper() + "_NATS_PASSWORD"
        text = text.replace("$" + var, '"%s"' % passwords[user])
    return text


class DeployInboxTest(AuthCase):
    """deploy/nats-server.conf with every process on its own inbox prefix
    (NATS_INBOX_PREFIX=_INBOX.<user>): each user may read only its own
    replies, and the whole stack still works through it."""

    @classmethod
    def setUpClass(cls):
        from test_things import MIGRATIONS
        cls.pw = {u: "p" + harness.rand_token(24) for u in DEPLOY_USERS}

        def start(stack):
            cls.nats = stack.nats(config=deploy_config(cls.pw))
            cls.pg = stack.postgres()
            cls.greeting = stack.service("greeting_service", cls.nats,
                                         env=cls.env("greeting_service"),
                                         ready_subject="greeting_service.hello_sleep")
            cls.thing = stack.service("thing_service", cls.nats,
                                      env=dict(cls.env("thing_service"), DATABASE_URL=cls.pg.url,
                                               THING_MIGRATIONS=MIGRATIONS),
                                      ready_subject="thing_service.get_things")
            # One loop: the restart test waits for one loop to reconnect.
            cls.gw, cls.port = stack.gateway(cls.nats, env=dict(cls.env("gateway"),
                                                                GATEWAY_THREADS="1"))
        cls.start_stack("nats-auth-inbox", start)

    @classmethod
    def env(cls, user, prefix=None):
        e = {"NATS_USER": user, "NATS_PASSWORD": cls.pw[user]}
        if user != "admin":
            e["NATS_INBOX_PREFIX"] = prefix or "_INBOX." + user
        return e

    def assertNothingRefused(self):
        """No process of the stack was refused anything by nats-server."""
        for p in (self.greeting, self.thing, self.gw):
            self.assertNotIn("NATS refused", p.log_text(), p.name)
            self.assertTrue(p.alive(), p.name)

    def test_1_calls_through_the_gateway(self):
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        r = post(self.port, "thing_service.create_thing", '[[], {"name": "inboxed"}]')
        self.assertEqual(r.status, 200, r.describe())
        thing = r.json()[0][0]
        r = post(self.port, "thing_service.get_thing", json.dumps([[thing["uuid"]]]))
        self.assertEqual((r.status, r.json()), (200, [[thing], {}]), r.describe())
        # The event went to JetStream, its acknowledgment to thing_service's
        # own inboxes.
        r = self.cli("--json", "events", "tail", "thing_service.>", "--from-start", "--count", "1",
                     env=self.env("admin"))
        self.assertEqual(r.returncode, 0, r.what)
        self.assertIn(thing["uuid"], r.out, r.what)
        self.assertNothingRefused()

    def test_2_cli_calls(self):
        self.assertCall(self.env("admin"))
        self.assertCall(self.env("gateway"))
        r = self.cli("--json", "ls", env=self.env("gateway"))
        self.assertEqual(r.returncode, 0, r.what)
        self.assertIn("greeting_service", r.out, r.what)
        self.assertIn("thing_service", r.out, r.what)

    def test_3_heartbeats(self):
        # The gateway expects greeting_service's heartbeats (its INFO says it
        # sends them): a 4 s call is answered only if every heartbeat, and
        # then the reply, passed nats-server's response permission.
        self.assertOk(post(self.port, "greeting_service.hello_sleep", '[["Bob", 4]]'), HELLO)
        r = self.cli("--json", "--timeout", "20", "call", "greeting_service.hello_sleep", "Bob",
                     "--seconds", "4", env=self.env("gateway"))
        self.assertEqual((r.returncode, r.out.strip()), (0, HELLO), r.what)
        self.assertNothingRefused()

    def test_4_discovery(self):
        r = http_call(self.port, "GET", "/services?refresh=1")
        self.assertEqual(r.status, 200, r.describe())
        names = sorted(s["name"] for s in r.json()["services"])
        self.assertEqual(names, ["greeting_service", "thing_service"], r.describe())

    def test_5_wamp_subscribe_is_confirmed(self):
        from test_websocket import WsClient
        c = WsClient(self.port, timeout=10)
        try:
            self.assertEqual(c.hello()[0], 2)
            # SUBSCRIBED waits for the gateway's marker to come back on its
            # own inbox.
            c.send_json([32, 1, {}, "inbox_it.topic"])
            sub = c.recv_json()
            self.assertEqual(sub[:2], [33, 1], sub)
            c.send_json([16, 2, {"acknowledge": True, "exclude_me": False}, "inbox_it.topic",
                         ["hi"]])
            published = c.recv_json()
            self.assertEqual(published[:2], [17, 2], published)
            self.assertEqual(c.recv_json(), [36, sub[2], published[2],
                                             {"topic": "inbox_it.topic"}, ["hi"]])
            c.send_json([48, 3, {}, "greeting_service.hello", ["Bob"]])
            self.assertEqual(c.recv_json(), [50, 3, {}, ["Hello, Bob"]])
        finally:
            c.close()
        self.assertNothingRefused()

    def assertRefusedSub(self, user, subject):
        r = self.cli("--timeout", "2", "sub", subject, "--count", "1", env=self.env(user))
        self.assertEqual(r.returncode, 1, r.what)
        self.assertIn('natsrpc: subscribe to %s failed: Permissions Violation for Subscription to '
                      '"%s"\n' % (subject, subject), r.err, r.what)
        self.assertEqual(r.out, "", r.what)

    def assertRefusedPub(self, user, subject):
        r = self.cli("pub", subject, "[]", env=self.env(user))
        self.assertEqual(r.returncode, 1, r.what)
        self.assertIn('natsrpc: publish on %s failed: Permissions Violation for Publish to "%s"\n'
                      % (subject, subject), r.err, r.what)

    def test_6_nobody_reads_anothers_replies(self):
        for user, subject in [
                ("gateway", "_INBOX.>"), ("gateway", ">"), ("gateway", "_INBOX.*.>"),
                ("gateway", "_INBOX.thing_service.>"), ("gateway", "_INBOX.greeting_service.*.*"),
                ("thing_service", "_INBOX.gateway.>"), ("thing_service", "_INBOX.>"),
                ("greeting_service", "_INBOX.gateway.>"), ("greeting_service", "_INBOX.*.>"),
                ("websocket_test", "_INBOX.gateway.>")]:
            with self.subTest(user=user, subject=subject):
                self.assertRefusedSub(user, subject)
        # The gateway answers no requests: it may not write into inboxes
        # but its own. Services may (replies, heartbeats, discovery answers
        # go to the caller's inbox; deploy/nats-server.conf, REPLIES).
        for user, subject in [("gateway", "_INBOX.thing_service.x.1"), ("gateway", "_INBOX.x")]:
            with self.subTest(user=user, subject=subject):
                self.assertRefusedPub(user, subject)

    def test_6_the_gateways_replies_travel_under_its_prefix(self):
        # admin may read anything: the reply to a call through the gateway
        # is on _INBOX.gateway.>, which no service's user may subscribe to.
        args = [harness.binary("natsrpc"), "--timeout", "20", "sub", "_INBOX.gateway.>", "--count",
                "1", "--raw"]
        e = dict(os.environ, NATS_URL=self.nats.url, **self.env("admin"))
        spy = subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.nats.wait_subscribers("_INBOX.gateway.>", 1)
            self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), HELLO)
            out, err = spy.communicate(timeout=20)
        finally:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
        self.assertEqual((spy.returncode, out.decode().strip()), (0, HELLO), err.decode())
        self.assertRefusedSub("thing_service", "_INBOX.gateway.>")

    def test_7_wrong_prefix_is_refused_by_the_server(self):
        # The gateway's user with thing_service's prefix: the inbox
        # subscription is refused, the call gets no reply.
        r = self.cli("--timeout", "2", "call", "greeting_service.hello", "Bob",
                     env=self.env("gateway", prefix="_INBOX.thing_service"))
        self.assertNotEqual(r.returncode, 0, r.what)
        self.assertIn('Permissions Violation for Subscription to "_INBOX.thing_service.', r.err,
                      r.what)

    def test_7_bad_prefix_stops_every_process_at_start(self):
        rule = (": a prefix is dot-separated tokens of letters, digits, '_' and '-' (no "
                "wildcards, spaces or '$')")
        cases = [
            ("_INBOX.*", "NATS_INBOX_PREFIX '_INBOX.*' holds '*'" + rule),
            ("_INBOX.gateway.>", "NATS_INBOX_PREFIX '_INBOX.gateway.>' holds '>'" + rule),
            ("_INBOX.a b", "NATS_INBOX_PREFIX '_INBOX.a b' holds the byte 0x20" + rule),
            ("_INBOX.$G", "NATS_INBOX_PREFIX '_INBOX.$G' holds '$'" + rule),
            ("$SYS.x", "NATS_INBOX_PREFIX '$SYS.x' holds '$'" + rule),
            ("_INBOX." + "g" * 58, "NATS_INBOX_PREFIX '_INBOX.%s...' is 65 bytes long: at most 64"
             % ("g" * 33)),
            ("_INBOX..gateway", "NATS_INBOX_PREFIX '_INBOX..gateway' has an empty token"),
            ("_INBOX_gateway", "NATS_INBOX_PREFIX '_INBOX_gateway' is not under _INBOX: use _INBOX "
             "or _INBOX.<name> (e.g. _INBOX.gateway), where the gateway never forwards"),
        ]
        for prefix, message in cases:
            with self.subTest(prefix=prefix):
                env = self.env("greeting_service", prefix=prefix)
                rc, log = self.start_refused("greeting_service", env)
                self.assertEqual(rc, 1, log)
                self.assertIn("ERROR greeting_service: %s\n" % message, log)
                rc, log = self.start_refused("natsrpc-gateway",
                                             dict(self.env("gateway", prefix=prefix),
                                                  GATEWAY_PORT=str(harness.free_port())))
                self.assertNotEqual(rc, 0, log)
                self.assertIn(message, log)
                r = self.cli("call", "greeting_service.hello", "Bob",
                             env=self.env("gateway", prefix=prefix))
                self.assertEqual((r.returncode, r.err),
                                 (3, "natsrpc: cannot connect to NATS: %s\n" % message), r.what)
        self.assertNoSecret(self.pw.values())

    def test_8_concurrent_callers(self):
        results = []

        def http():
            r = post(self.port, "greeting_service.hello", '[["Bob"]]')
            results.append((r.status, r.text))

        def cli():
            r = self.cli("--json", "call", "greeting_service.hello", "Bob",
                         env=self.env("gateway"))
            results.append((200 if r.returncode == 0 else r.returncode, r.out.strip()))
        threads = [threading.Thread(target=f) for f in (http, cli) * 8]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [(200, HELLO)] * 16)
        self.assertNothingRefused()

    def test_9_nats_restart_mid_call(self):
        # Back with the same prefixes, under the same permissions: calls,
        # heartbeats and the services' inboxes work again.
        self.restart_with_a_call_in_flight('[["Bob", 3]]')
        self.assertOk(post(self.port, "greeting_service.hello_sleep", '[["Bob", 2]]'), HELLO)
        self.assertCall(self.env("gateway"))
        # The cut-off call's late reply or heartbeats (the gateway answered
        # it 503) go to an inbox services may publish on, and are dropped
        # there: nothing was refused.
        self.assertNothingRefused()
        self.assertNoSecret(self.pw.values())


if __name__ == "__main__":
    unittest.main()
