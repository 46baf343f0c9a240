"""./dev up --secure: nats-server runs with deploy/nats-server.conf, every
process connects as its own NATS user with a password made at start, the
stack works end to end (rpcs, a thing stored and its event on JetStream),
each user is held to its permissions, and ./dev down stops it all.

Runs the real script on free loopback ports with its state in a temporary
DEV_RUN_DIR, so a developer's own ./dev up is never touched."""

import json
import os
import stat
import subprocess
import unittest

import harness
from harness import post
from test_dev_cluster import ROOT, DevScriptCase, free_run

HELLO = '[["Hello, Bob"], {}]'


def read_env(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k:
                out[k] = v
    return out


def running(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


class DevSecureTest(DevScriptCase):
    @classmethod
    def setUpClass(cls):
        cls.new_run_dir("nrpc-devs-")
        cls.nats_port = free_run(1)
        cls.env = dict(os.environ, DEV_RUN_DIR=cls.dir, DEV_NATS_PORT=str(cls.nats_port),
                       DEV_PG_PORT=str(free_run(1)), GATEWAY_PORT=str(free_run(1)))
        for k in ("NATS_URL", "DATABASE_URL", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN"):
            cls.env.pop(k, None)
        cls.gw = int(cls.env["GATEWAY_PORT"])
        cls.up_result = cls.up("--secure")
        cls.secrets = read_env(os.path.join(cls.dir, "nats-secure.env"))
        cls.admin = read_env(os.path.join(cls.dir, "nats-admin.env"))


    def cli(self, *args, user=None, password=None):
        e = dict(self.env, NATS_URL="nats://127.0.0.1:%d" % self.nats_port)
        if user:
            e.update(NATS_USER=user, NATS_PASSWORD=password)
        if user and user != "admin":  # the only inboxes the user may read
            e.update(NATS_INBOX_PREFIX="_INBOX." + user)
        r = subprocess.run([harness.binary("natsrpc"), "--timeout", "2"] + list(args), env=e,
                           capture_output=True, text=True, timeout=30)
        r.what = "natsrpc %s as %s -> %d\n%s%s" % (" ".join(args), user, r.returncode, r.stdout,
                                                  r.stderr)
        return r

    def test_1_stack_works(self):
        self.assertIn("NATS with deploy/nats-server.conf, a user per process", self.up_result.stdout)
        r = post(self.gw, "greeting_service.hello", '[["Bob"]]')
        self.assertEqual((r.status, r.text), (200, HELLO), r.describe())
        r = post(self.gw, "thing_service.create_thing", '[[], {"name": "secured"}]')
        self.assertEqual(r.status, 200, r.describe())
        uuid = r.json()[0][0]["uuid"]
        # the event went to JetStream through thing_service's own permissions
        r = self.cli("--json", "events", "tail", "thing_service.>", "--from-start", "--count", "1",
                     user="admin", password=self.admin["NATS_PASSWORD"])
        self.assertEqual(r.returncode, 0, r.what)
        self.assertIn(uuid, r.stdout, r.what)

    def test_2_credentials_files(self):
        users = {"GREETING_SERVICE_NATS_PASSWORD", "THING_SERVICE_NATS_PASSWORD",
                 "WEBSOCKET_TEST_NATS_PASSWORD", "GATEWAY_NATS_PASSWORD", "NATS_ADMIN_PASSWORD"}
        self.assertEqual(set(self.secrets), users)
        self.assertEqual(len(set(self.secrets.values())), len(users), "passwords must differ")
        for v in self.secrets.values():
            self.assertRegex(v, "^p[0-9a-f]{36}$")
        self.assertEqual(self.admin, {"NATS_USER": "admin",
                                      "NATS_PASSWORD": self.secrets["NATS_ADMIN_PASSWORD"]})
        for name in ("nats-secure.env", "nats-admin.env"):
            mode = stat.S_IMODE(os.stat(os.path.join(self.dir, name)).st_mode)
            self.assertEqual(mode, 0o600, name)
        # no password in any log, nor on a command line
        for name in os.listdir(self.dir):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text = f.read()
                for v in self.secrets.values():
                    self.assertNotIn(v, text, name)
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        for v in self.secrets.values():
            self.assertNotIn(v, ps)
        # each process connected as its own user, its replies under its own
        # prefix (the only one its user may read)
        with open(os.path.join(self.dir, "gateway.log")) as f:
            self.assertIn("with user 'gateway' (NATS_USER, NATS_PASSWORD), replies under "
                          "_INBOX.gateway.>", f.read())
        with open(os.path.join(self.dir, "thing_service.log")) as f:
            self.assertIn("with user 'thing_service' (NATS_USER, NATS_PASSWORD), replies under "
                          "_INBOX.thing_service.>", f.read())

    def test_3_users_are_held_to_their_permissions(self):
        pw = self.secrets
        r = self.cli("--json", "call", "greeting_service.hello", "Bob", user="gateway",
                     password=pw["GATEWAY_NATS_PASSWORD"])
        self.assertEqual((r.returncode, r.stdout.strip()), (0, HELLO), r.what)
        # an rpc nobody serves is a 404 at once, not a publish dropped
        r = post(self.gw, "nobody_service.x", "[]")
        self.assertEqual((r.status, r.text),
                         (404, '{"error": {"code": 404, "type": "not_found", "message": '
                               '"no such rpc: nobody_service.x"}}'), r.describe())
        # the gateway's user cannot forge the events thing_service keeps
        r = self.cli("pub", "events.thing_service.thing_created", "[]", user="gateway",
                     password=pw["GATEWAY_NATS_PASSWORD"])
        self.assertEqual(r.returncode, 1, r.what)
        # (said by the publish's flush or by nats.c's error callback,
        # whichever hears of it first)
        self.assertIn('Permissions Violation for Publish to '
                      '"events.thing_service.thing_created"', r.stderr, r.what)
        # greeting_service's user may not call another service: nats-server
        # drops the request, no answer comes
        r = self.cli("call", "thing_service.get_things", user="greeting_service",
                     password=pw["GREETING_SERVICE_NATS_PASSWORD"])
        self.assertNotEqual(r.returncode, 0, r.what)
        # a wrong password, and no credentials at all, are refused at once
        r = self.cli("call", "greeting_service.hello", "Bob", user="admin", password="guess")
        self.assertEqual(r.returncode, 3, r.what)
        self.assertIn("Authorization Violation", r.stderr)
        r = self.cli("call", "greeting_service.hello", "Bob")
        self.assertEqual(r.returncode, 3, r.what)
        self.assertIn("Authorization Violation", r.stderr)

    def test_5_down_stops_everything(self):
        r = self.dev("ps", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        pids = [p["pid"] for p in json.loads(r.stdout)]
        self.assertEqual(len(pids), 6)
        r = self.dev("down")
        self.assertEqual(r.returncode, 0, r.stderr)
        for pid in pids:
            self.assertFalse(running(pid), "pid %d still running after ./dev down" % pid)
        self.assertFalse(harness.port_open(self.gw))
        self.assertFalse(harness.port_open(self.nats_port))

    def test_6_secure_needs_its_own_server(self):
        r = self.dev("up", "--secure", env=dict(self.env, NATS_URL="nats://127.0.0.1:1"),
                     timeout=240)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--secure starts its own nats-server with deploy/nats-server.conf: unset "
                      "NATS_URL", r.stderr)


if __name__ == "__main__":
    unittest.main()
