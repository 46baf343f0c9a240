"""./dev up --cluster: three NATS nodes with routes, two replicas of every
service spread over them, two gateways; ./dev ps lists them; a node killed
with SIGKILL costs a gateway seconds, not the stack; ./dev down stops all.

Runs the real script on free loopback ports with its state in a temporary
DEV_RUN_DIR, so a developer's own ./dev up is never touched."""

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import post

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def ephemeral_low():
    """The lowest port the kernel hands out as a connection's source: ports
    we listen on stay below it, or a service's own NATS connection may hold
    one of them by the time the gateway binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


TAKEN = set()


def free_run(n, lo=12000):
    """A base port with n free ports in a row (and n more 2000 above), none
    of them handed out by an earlier call."""
    hi = ephemeral_low() - 2000 - n
    for _ in range(500):
        base = random.randrange(lo, hi)
        ports = [base + i for i in range(n)] + [base + 2000 + i for i in range(n)]
        if not TAKEN.intersection(ports) and not any(harness.port_open(p) for p in ports):
            TAKEN.update(ports)
            return base
    raise AssertionError("no run of %d free ports" % n)


class DevScriptCase(unittest.TestCase):
    """A test of the real ./dev script: its state in a temporary DEV_RUN_DIR
    (cls.dir), its ports free loopback ones (cls.env), so a developer's own
    ./dev up is never touched; ./dev down and the directory go at the end."""

    @classmethod
    def new_run_dir(cls, prefix):
        if not os.access(os.path.join(harness.BIN_DIR, "natsrpc-gateway"), os.X_OK):
            raise unittest.SkipTest("build/bin not built")
        cls.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(cls.dir, 0o755)  # PostgreSQL runs as its own user under it

    @classmethod
    def up(cls, *args):
        """./dev up ARGS --detach; stops what it started and fails if it fails."""
        r = cls.dev("up", *args, "--detach", timeout=240)
        if r.returncode != 0:
            cls.dev("down")
            raise AssertionError("./dev up %s failed:\n" % " ".join(args) + r.stdout + r.stderr)
        return r

    @classmethod
    def tearDownClass(cls):
        cls.dev("down")
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def dev(cls, *args, timeout=60, env=None):
        return subprocess.run([os.path.join(ROOT, "dev")] + list(args), cwd=ROOT,
                              env=env or cls.env, capture_output=True, text=True, timeout=timeout)


class DevClusterTest(DevScriptCase):
    @classmethod
    def setUpClass(cls):
        cls.new_run_dir("nrpc-devc-")
        nats = free_run(3)
        cls.env = dict(os.environ, DEV_RUN_DIR=cls.dir, DEV_NATS_PORT=str(nats),
                       DEV_NATS_CLUSTER_PORT=str(nats + 2000), DEV_PG_PORT=str(free_run(1)),
                       GATEWAY_PORT=str(free_run(2)))
        cls.env.pop("NATS_URL", None)
        cls.env.pop("DATABASE_URL", None)
        cls.gw = int(cls.env["GATEWAY_PORT"])
        cls.up("--cluster")

    def ps(self):
        r = self.dev("ps", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_1_ps_lists_the_cluster(self):
        procs = {p["name"]: p for p in self.ps()}
        want = {"nats-n1", "nats-n2", "nats-n3", "postgres", "gateway-1", "gateway-2"}
        for svc in ("greeting_service", "thing_service", "websocket_test"):
            want |= {svc + "-1", svc + "-2"}
        self.assertEqual(set(procs), want)
        for p in procs.values():
            self.assertEqual(p["state"], "running", p)
            self.assertGreater(p["pid"], 1)
        # the replicas of each service sit on two different nodes
        for svc in ("greeting_service", "thing_service", "websocket_test"):
            self.assertNotEqual(procs[svc + "-1"]["info"], procs[svc + "-2"]["info"])
        self.assertIn("http=http://127.0.0.1:%d" % (self.gw + 1), procs["gateway-2"]["info"])
        # the plain table names the same processes
        r = self.dev("ps")
        self.assertEqual(r.returncode, 0)
        for name in want:
            self.assertIn(name, r.stdout)

    def test_2_both_gateways_serve_every_service(self):
        # ./dev up waits for one thing_service; the other replica may still be
        # applying (or waiting on) the migrations and answer 503 meanwhile.
        def both_things_served():
            return all(post(p, "thing_service.get_things", '[]').status == 200
                       for p in (self.gw, self.gw + 1) for _ in range(4))
        harness.wait_for(both_things_served, 20, interval=0.2, what="both thing_service replicas")
        for port in (self.gw, self.gw + 1):
            r = post(port, "greeting_service.hello", '[["Bob"]]')
            self.assertEqual(r.status, 200, r.describe())
            self.assertEqual(r.body, b'[["Hello, Bob"], {}]')
            r = post(port, "thing_service.create_thing", '[[], {"name": "clustered"}]')
            self.assertEqual(r.status, 200, r.describe())

    def test_3_a_dead_node_costs_seconds(self):
        procs = {p["name"]: p for p in self.ps()}
        os.kill(procs["nats-n1"]["pid"], signal.SIGKILL)  # gateway-1's node
        t0 = time.monotonic()

        def served():
            r = post(self.gw, "greeting_service.hello", '[["Bob"]]', timeout=5)
            return r.status == 200

        harness.wait_for(served, 15, interval=0.2, what="gateway-1 serving after its node died")
        self.assertLess(time.monotonic() - t0, 15)
        r = post(self.gw + 1, "greeting_service.hello", '[["Bob"]]')
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual({p["name"]: p["state"] for p in self.ps()}["nats-n1"], "exited")

    def test_4_refusals(self):
        r = self.dev("up", "--cluster", "--detach")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already running", r.stderr)
        r = self.dev("ps", "--bogus")
        self.assertNotEqual(r.returncode, 0)
        other = dict(self.env, DEV_RUN_DIR=self.dir + "-other", NATS_URL="nats://127.0.0.1:1")
        r = self.dev("up", "--cluster", "--detach", env=other)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unset NATS_URL", r.stderr)
        shutil.rmtree(self.dir + "-other", ignore_errors=True)

    def test_5_down_stops_everything(self):
        pids = [p["pid"] for p in self.ps()]
        r = self.dev("down")
        self.assertEqual(r.returncode, 0, r.stderr)
        for pid in pids:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    state = f.read().split(") ")[1][0]
            except OSError:
                continue  # gone
            self.assertEqual(state, "Z", "pid %d still running" % pid)
        self.assertEqual(self.ps(), [])


if __name__ == "__main__":
    unittest.main()
