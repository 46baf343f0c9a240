"""Chaos on a real cluster on loopback: 3 NATS nodes with routes, 2
replicas of greeting_service and of thing_service on different nodes, 2
gateways on different nodes, one PostgreSQL. Each test puts load on it,
injects one fault, prints its figures on one line starting with "chaos:",
checks what must always hold, and puts the cluster back together.

  1. kill -9 of a NATS node (gateway 1's and a replica's) under load
  2. kill -9 of a greeting_service replica under load
  3. SIGTERM of a greeting_service replica under load: zero failures
  4. SIGTERM, then kill -9, of gateway 1 under load, clients falling back
     to gateway 2 as a load balancer would: zero failures on SIGTERM
  5. PostgreSQL restart during a create loop with request_ids: every
     acknowledged thing present, none created twice

Load: LOAD_THREADS closed-loop HTTP clients on keep-alive connections, half
on each gateway. Every call is safe to repeat (hello; creates carry a
request_id), so a client whose gateway refuses the connection, or cuts it
before an answer, sends the call to the other gateway, as a load balancer
retrying on connection failures does; such calls are counted as rerouted
and cut. A status other than 200 counts as failed. The gateways' timeout is
5 s, so every fault ends within the test.

Figures: failed calls; the longest call among those running when the fault
hit or started after it; "full throughput after": from the fault to the end
of the last 250 ms window whose answered calls fell under half the rate
before the fault.

The issue's targets are under 2 s per fault (3 s for a killed replica, the
time two missed progress heartbeats take), zero lost acknowledged writes and
zero failures on SIGTERM. The last two and the gateway restart are asserted
always. The NATS node and killed replica targets need the gateway to fail
requests at once when its connection drops and to detect a dead replica;
they are asserted with NRPC_CHAOS_STRICT=1 and otherwise reported.
"""

import http.client
import os
import signal
import threading
import time
import unittest
import uuid

import cluster
import harness
from test_things import MIGRATIONS

LOAD_THREADS = 6
GATEWAY_TIMEOUT_S = 5
BASELINE_S = 2.0
STRICT = os.environ.get("NRPC_CHAOS_STRICT") == "1"
HELLO = ("greeting_service.hello", '[["Chaos"]]')


class Call:
    __slots__ = ("t0", "t1", "status", "error", "rerouted", "cut", "body")

    def __init__(self, t0):
        self.t0, self.t1, self.status, self.error, self.body = t0, None, None, None, b""
        self.rerouted = self.cut = 0


class Load:
    """Closed-loop clients until stop(); calls[] records every call."""

    def __init__(self, ports, rpc=HELLO, threads=LOAD_THREADS, make_body=None, retry_until_ok=False):
        self.ports = ports
        self.rpc = rpc
        self.make_body = make_body
        self.retry_until_ok = retry_until_ok
        self.calls = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(GATEWAY_TIMEOUT_S * 3 + 10)
        return self.calls

    def _post(self, conns, port, body):
        """(status, body) of one POST on port's kept-alive connection, or
        raises: ConnectionRefusedError, or ("stale", e) when a reused
        connection broke before its answer."""
        conn = conns.get(port)
        fresh = conn is None
        if fresh:
            conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port,
                                                            timeout=GATEWAY_TIMEOUT_S * 3)
        try:
            conn.request("POST", "/" + self.rpc[0], body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conns.pop(port, None)
            return r.status, data
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
                http.client.RemoteDisconnected) as e:
            conn.close()
            conns.pop(port, None)
            if isinstance(e, ConnectionRefusedError):
                raise
            raise StaleConnection(e, fresh) from None

    def _run(self, i):
        conns = {}
        order = self.ports[i % len(self.ports):] + self.ports[:i % len(self.ports)]
        n = 0
        while not self.stopping.is_set():
            body = self.make_body(i, n) if self.make_body else self.rpc[1]
            n += 1
            c = Call(time.monotonic())
            attempt = 0
            while True:
                port = order[attempt % len(order)]
                try:
                    c.status, c.body = self._post(conns, port, body)
                    if c.status == 200 or not self.retry_until_ok or self.stopping.is_set():
                        break
                    time.sleep(0.05)  # a 503 from a dependency that is down: again
                except ConnectionRefusedError as e:
                    c.error = e
                    if attempt >= 20:
                        break
                    time.sleep(0.02 if attempt % 2 == 0 else 0.1)
                except StaleConnection as e:
                    # Cut before an answer: a reused connection the gateway
                    # closed, one still in its accept queue when it stopped
                    # listening, or the gateway died. Safe to repeat.
                    c.error = e.cause
                    c.cut += 1
                    if attempt >= 20:
                        break
                attempt += 1
                c.rerouted += 1
            c.t1 = time.monotonic()
            if c.status == 200:
                c.error = None
            with self.lock:
                self.calls.append(c)
        for conn in conns.values():
            conn.close()


class StaleConnection(Exception):
    def __init__(self, cause, fresh):
        super().__init__(repr(cause))
        self.cause, self.fresh = cause, fresh


def figures(calls, t_fault, bin_s=0.25):
    """failed, longest call around the fault (s), full throughput after (s),
    rerouted calls."""
    ok_ends = sorted(c.t1 for c in calls if c.status == 200)
    before = [t for t in ok_ends if t_fault - BASELINE_S <= t < t_fault]
    rate = len(before) / BASELINE_S  # calls per second before the fault
    end = max((c.t1 for c in calls), default=t_fault)
    recovered = 0.0
    t = t_fault
    while t + bin_s <= end:
        n = sum(1 for x in ok_ends if t <= x < t + bin_s)
        if n < 0.5 * rate * bin_s:
            recovered = t + bin_s - t_fault
        t += bin_s
    around = [c.t1 - c.t0 for c in calls if c.t1 >= t_fault]
    failed = [c for c in calls if c.status != 200]
    return {"calls": len(calls), "failed": len(failed), "longest": max(around, default=0.0),
            "recovered": recovered, "rate": rate,
            "rerouted": sum(1 for c in calls if c.rerouted),
            "cut": sum(1 for c in calls if c.cut),
            "failures": sorted({(c.status, repr(c.error)[:80]) for c in failed})}


class ChaosTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nodes = n = cluster.nats_cluster(stack)
            cls.pg = stack.postgres()
            cls.greeting = [stack.service("greeting_service", n[0]),
                            stack.service("greeting_service", n[1])]
            thing_env = {"DATABASE_URL": cls.pg.url, "THING_MIGRATIONS": MIGRATIONS}
            cls.things = [stack.service("thing_service", n[1], env=thing_env,
                                        ready_subject="thing_service.get_things"),
                          stack.service("thing_service", n[2], env=thing_env,
                                        ready_subject="thing_service.get_things")]
            # The load comes from one address: the per-address rate limit
            # (a defence against one abusive client) would be the fault.
            cls.gw_env = {"GATEWAY_TIMEOUT": str(GATEWAY_TIMEOUT_S), "GATEWAY_RATE_LIMIT": "0"}
            cls.gw1, cls.port1 = stack.gateway(n[0], env=cls.gw_env)
            cls.gw2, cls.port2 = stack.gateway(n[1], env=cls.gw_env)
            for port in (cls.port1, cls.port2):
                harness.wait_for(lambda: harness.post(port, "thing_service.get_things",
                                                      "[]").status == 200,
                                 harness.START_TIMEOUT, what="thing_service through %d" % port)
        cls.start_stack("chaos", start)

    # -- helpers

    def under_load(self, fault, settle_s=GATEWAY_TIMEOUT_S + 2.0, **load_kw):
        """Runs the load, BASELINE_S of it before fault(), settle_s after;
        returns (calls, t_fault)."""
        load = Load([self.port1, self.port2], **load_kw).start()
        time.sleep(BASELINE_S + 0.5)
        t_fault = time.monotonic()
        fault()
        time.sleep(settle_s)
        calls = load.stop()
        self.assertTrue(all(c.t1 is not None for c in calls))
        self.assertGreater(len(calls), 50, "the load did not run")
        return calls, t_fault

    def report(self, what, f, targets=""):
        print("\nchaos: %s: %d calls (%.0f/s before), %d failed, %d rerouted (%d cut), longest "
              "%.2f s, full throughput after %.2f s%s" % (
                  what, f["calls"], f["rate"], f["failed"], f["rerouted"], f["cut"], f["longest"],
                  f["recovered"], targets))
        if f["failures"]:
            print("       failures seen: %s" % (f["failures"][:5],))

    def serving(self, port):
        try:
            return harness.post(port, *HELLO, timeout=5).status == 200
        except OSError:
            return False

    # -- faults

    def test_1_nats_node_killed(self):
        node = self.nodes[0]  # gateway 1's and greeting replica 1's
        calls, t_fault = self.under_load(lambda: node.proc.signal(signal.SIGKILL))
        f = figures(calls, t_fault)
        self.report("kill -9 of NATS node n1 under load", f,
                    " (target: < 2 s%s)" % ("" if STRICT else ", not asserted"))
        node.start()  # same ports
        cluster.wait_meshed(self.nodes)
        self.assertTrue(self.gw1.alive() and self.gw2.alive())
        harness.wait_for(lambda: self.serving(self.port1), 10, what="gateway 1 serving")
        if STRICT:
            self.assertLess(f["longest"], 2.0)
            self.assertLess(f["recovered"], 2.0)
        # whatever the timing, nothing waits past the gateway's timeout
        self.assertLess(f["longest"], GATEWAY_TIMEOUT_S + 1.5)

    def restart_greeting(self, i, node):
        self.greeting[i] = self.stack.service("greeting_service", node)

    def test_2_replica_killed(self):
        victim = self.greeting[0]
        calls, t_fault = self.under_load(lambda: victim.signal(signal.SIGKILL))
        f = figures(calls, t_fault)
        self.report("kill -9 of a greeting_service replica under load", f,
                    " (target: < 3 s%s)" % ("" if STRICT else ", not asserted"))
        self.restart_greeting(0, self.nodes[0])
        if STRICT:
            self.assertLess(f["longest"], 3.0)
            self.assertLess(f["recovered"], 3.0)
        self.assertLess(f["longest"], GATEWAY_TIMEOUT_S + 1.5)
        for c in calls:  # a lost replica is a 503 or a 504, nothing else
            self.assertIn(c.status, (200, 503, 504), c.body)

    def test_3_replica_sigterm(self):
        victim = self.greeting[1]
        calls, t_fault = self.under_load(lambda: victim.signal(signal.SIGTERM), settle_s=3.0)
        self.assertEqual(victim.wait(harness.STOP_TIMEOUT), 0, victim.log_tail())
        f = figures(calls, t_fault)
        self.report("SIGTERM of a greeting_service replica under load", f, " (target: 0 failed)")
        self.restart_greeting(1, self.nodes[1])
        self.assertEqual(f["failed"], 0, f["failures"])

    def restart_gateway_1(self, sig):
        t0 = time.monotonic()
        self.gw1.signal(sig)
        self.assertIsNotNone(self.gw1.wait(harness.STOP_TIMEOUT + 5))
        self.gw1, _ = self.stack.gateway(self.nodes[0], port=self.port1, env=self.gw_env)
        return time.monotonic() - t0

    def test_4_gateway_restart(self):
        down = {}
        calls, t_fault = self.under_load(
            lambda: down.setdefault("term", self.restart_gateway_1(signal.SIGTERM)), settle_s=2.0)
        f = figures(calls, t_fault)
        self.report("SIGTERM and restart of gateway 1 under load (back in %.2f s)" % down["term"],
                    f, " (target: 0 failed)")
        self.assertEqual(f["failed"], 0, f["failures"])
        self.assertGreater(f["rerouted"], 0, "no call went to gateway 2 meanwhile")

        calls, t_fault = self.under_load(
            lambda: down.setdefault("kill", self.restart_gateway_1(signal.SIGKILL)), settle_s=2.0)
        f = figures(calls, t_fault)
        self.report("kill -9 and restart of gateway 1 under load (back in %.2f s)" % down["kill"],
                    f, " (target: 0 failed)")
        self.assertEqual(f["failed"], 0, f["failures"])
        self.assertLess(f["longest"], GATEWAY_TIMEOUT_S)

    def test_5_postgres_restart_during_creates(self):
        run = uuid.uuid4().hex[:8]

        def body(i, n):
            rid = "chaos-%s-%d-%d" % (run, i, n)
            return '[[], {"name": "%s", "request_id": "%s"}]' % (rid, rid)

        times = {}

        def restart():
            times["stop"] = time.monotonic()
            self.pg.stop()
            time.sleep(1.0)
            self.pg.start()
            times["back"] = time.monotonic()

        calls, t_fault = self.under_load(restart, settle_s=4.0, threads=4,
                                         rpc=("thing_service.create_thing", None),
                                         make_body=body, retry_until_ok=True)
        import json
        acked = {}
        for c in calls:
            if c.status == 200:
                thing = json.loads(c.body)[0][0]
                acked[thing["name"]] = thing["uuid"]
        rows = self.pg.psql("SELECT name, uuid FROM thing WHERE name LIKE 'chaos-%s-%%'" % run)
        in_table = {}
        twice = []
        for line in rows.splitlines():
            name, u = line.split("|")
            if name in in_table:
                twice.append(name)
            in_table[name] = u
        missing = [n for n, u in acked.items() if in_table.get(n) != u]
        first_ok_after = min((c.t1 for c in calls if c.status == 200 and c.t1 >= times["back"]),
                             default=float("inf"))
        unanswered = [c for c in calls if c.status != 200]
        refused = sum(1 for c in calls if c.rerouted)
        print("\nchaos: PostgreSQL restart during a create loop: %d creates acknowledged, "
              "%d missing from the table, %d request_ids created twice, %d creates needed a "
              "retry, %d not acknowledged (stopped mid-retry), database down %.2f s, first "
              "create %.2f s after it was back"
              % (len(acked), len(missing), len(twice), refused, len(unanswered),
                 times["back"] - times["stop"], first_ok_after - times["back"]))
        self.assertEqual(missing, [])
        self.assertEqual(twice, [])
        self.assertGreater(len(acked), 20)
        # everything in the table under this run was acknowledged, or was
        # being retried when the load stopped
        self.assertLessEqual(len(in_table) - len(acked), len(unanswered))


if __name__ == "__main__":
    unittest.main()
