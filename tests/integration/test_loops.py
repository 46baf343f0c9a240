"""The gateway's loops: GATEWAY_THREADS loops, each one thread that owns its
HTTP listener, NATS connection and WebSockets. Its threads are counted and
named; the drain and a NATS outage are checked with requests in flight on
several loops at once."""

import concurrent.futures
import os
import signal
import time
import unittest

import harness
from harness import http_call, post
from test_websocket import WsClient

HELLO = '[["Hello, Bob"], {}]'
# nats.c starts three library threads once per process (timers, connection
# callbacks, garbage collection); the gateway names them "nats.c".
NATS_LIBRARY_THREADS = 3


def thread_names(pid):
    """The comm of every thread of pid."""
    names = []
    for tid in sorted(os.listdir("/proc/%d/task" % pid)):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except OSError:
            pass  # a thread that just ended
    return names


def stop(gw):
    """SIGTERM, and the exit status (None if still running after 10 s)."""
    gw.signal(signal.SIGTERM)
    return gw.wait(10)


def sleepy(port, seconds, timeout=30):
    return post(port, "greeting_service.hello_sleep",
                '[[], {"name": "Bob", "seconds": %s}]' % seconds, timeout=timeout)


class ThreadsTest(harness.IntegrationCase):
    """One thread per loop, plus the main thread and nats.c's, whatever the
    load: no thread per connection, per request or per WebSocket."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
        cls.start_stack("loops-threads", start)

    def check_threads(self, gw, loops):
        names = thread_names(gw.pid)
        self.assertEqual(sorted(n for n in names if n.startswith("gw-loop-")),
                         sorted("gw-loop-%d" % i for i in range(loops)), names)
        self.assertEqual(names.count("nats.c"), NATS_LIBRARY_THREADS, names)
        # the main thread (signals and the drain) keeps the program's name
        self.assertEqual(len(names), loops + 1 + NATS_LIBRARY_THREADS, names)

    def test_thread_count_and_names(self):
        for loops in (1, 2, 3):
            gw, port = self.stack.gateway(self.nats, env={"GATEWAY_THREADS": str(loops)})
            self.check_threads(gw, loops)
            # busy: calls in flight, a WebSocket, pages; still the same threads
            with concurrent.futures.ThreadPoolExecutor(16) as ex:
                calls = [ex.submit(sleepy, port, 0.5) for _ in range(16)]
                time.sleep(0.2)
                ws = WsClient(port)
                self.assertEqual(ws.hello()[0], 2)
                self.assertEqual(http_call(port, "GET", "/services", timeout=5).status, 200)
                self.check_threads(gw, loops)
                for f in calls:
                    self.assertOk(f.result(), HELLO)
                ws.close()
            self.check_threads(gw, loops)
            self.assertEqual(stop(gw), 0, gw.log_tail())

    def test_default_is_one_loop_per_cpu(self):
        gw, port = self.stack.gateway(self.nats)
        cpus = len(os.sched_getaffinity(gw.pid))
        self.check_threads(gw, cpus)
        self.assertIn("(%d loops," % cpus, gw.log_text())
        self.assertEqual(stop(gw), 0, gw.log_tail())

    def test_bad_values_refuse_to_start(self):
        for bad in ("abc", "-1", "257", "1.5", "2x"):
            p = self.stack.spawn("natsrpc-gateway", [harness.binary("natsrpc-gateway")],
                                 env={"NATS_URL": self.nats.url, "GATEWAY_THREADS": bad,
                                      "GATEWAY_PORT": harness.free_port()})
            p.signalled = True  # exits by itself: that is the point
            rc = p.wait(10)
            self.assertEqual(rc, 2, "GATEWAY_THREADS=%s: %s" % (bad, p.log_tail()))
            self.assertIn("GATEWAY_THREADS=%s" % bad, p.log_text())

    def test_every_loop_serves(self):
        """Each loop has its own NATS connection, named after it."""
        gw, port = self.stack.gateway(self.nats, env={"GATEWAY_THREADS": "2"})
        conns = self.nats.monitor("/connz").get("connections", [])
        names = sorted(c.get("name", "") for c in conns if c.get("name", "").startswith("natsrpc-gateway/"))
        self.assertEqual(names, ["natsrpc-gateway/0", "natsrpc-gateway/1"], conns)
        for _ in range(20):
            self.assertOk(post(port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        self.assertEqual(stop(gw), 0, gw.log_tail())


class DrainManyLoopsTest(harness.IntegrationCase):
    """SIGTERM with calls in flight on every loop: each is answered, then the
    gateway exits 0."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_THREADS": "2"})
        cls.start_stack("loops-drain", start)

    def test_in_flight_calls_on_every_loop_are_answered(self):
        # 16 connections: the kernel spreads them over both listening sockets
        # (the chance that all land on one loop is 2^-15).
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            calls = [ex.submit(sleepy, self.port, 1.5) for _ in range(16)]
            harness.wait_for(lambda: self.in_flight() >= 16, 5, what="16 calls in flight")
            by_loop = self.gateway_nats_in_flight()
            self.assertEqual(len(by_loop), 2, by_loop)
            self.assertTrue(all(n > 0 for n in by_loop.values()),
                            "calls in flight on every loop's connection: %s" % by_loop)
            t_term = time.monotonic()
            self.gw.signal(signal.SIGTERM)
            results = [f.result() for f in calls]
        for r in results:
            self.assertOk(r, HELLO)
        rc = self.gw.wait(10)
        self.assertEqual(rc, 0, self.gw.log_tail())
        self.assertLess(time.monotonic() - t_term, 5.0)

    def in_flight(self):
        return sum(self.gateway_nats_in_flight().values())

    def gateway_nats_in_flight(self):
        """Requests each gateway connection sent that the service has not
        answered yet: nats-server's per-connection counters."""
        conns = self.nats.monitor("/connz?subs=1").get("connections", [])
        out = {}
        for c in conns:
            name = c.get("name", "")
            if name.startswith("natsrpc-gateway/"):
                out[name] = c.get("in_msgs", 0) - c.get("out_msgs", 0)
        return out


class NatsKilledTest(harness.IntegrationCase):
    """nats-server killed while calls are in flight on every loop: each call
    gets one answer (503) at once, nothing hangs, and every loop reconnects
    when NATS is back."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_THREADS": "2"})
        cls.start_stack("loops-nats-killed", start)

    def test_killed_mid_call(self):
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            calls = [ex.submit(sleepy, self.port, 3) for _ in range(16)]
            time.sleep(0.5)
            t_kill = time.monotonic()
            self.nats.proc.signal(signal.SIGKILL)
            self.nats.proc.wait(5)
            harness.wait_for(lambda: not harness.port_open(self.nats.port), 10,
                             what="the NATS port released")
            results = [f.result() for f in calls]
        took = time.monotonic() - t_kill
        for r in results:
            self.assertHttpError(r, 503, "unavailable")
        self.assertLess(took, 2.5, "calls waited %.2fs after NATS died" % took)
        self.assertTrue(self.gw.alive(), self.gw.log_tail())

        self.nats.start()  # same port

        def recovered():
            h = http_call(self.port, "GET", "/healthz", timeout=5)
            return h.status == 200

        harness.wait_for(recovered, 15, interval=0.2, what="every loop reconnected")
        harness.wait_for(lambda: len(self.nats.connections_subscribed("greeting_service.hello")) >= 1,
                         15, what="greeting_service back on NATS")
        for _ in range(20):
            self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), HELLO)


class StartedBeforeNatsTest(harness.IntegrationCase):
    """A gateway started while NATS is not there yet answers 503, and every
    loop connects once NATS comes (each loop retries on its own loop)."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            pass
        cls.start_stack("loops-before-nats", start)

    def test_gateway_before_nats(self):
        port = harness.free_port()
        nats_port = harness.free_port()
        late = harness.Nats(self.stack, port=nats_port, name="late-nats")
        gw = self.stack.spawn("natsrpc-gateway", [harness.binary("natsrpc-gateway")],
                              env={"NATS_URL": late.url, "GATEWAY_PORT": port,
                                   "GATEWAY_THREADS": "2"})
        harness.wait_for(lambda: harness.port_open(port), 10, what="gateway listening")
        h = http_call(port, "GET", "/healthz", timeout=5)
        self.assertEqual(h.status, 503, h.describe())
        r = post(port, "greeting_service.hello", '[["Bob"]]')
        self.assertHttpError(r, 503, "unavailable")
        late.start()
        self.stack.service("greeting_service", late)
        harness.wait_for(lambda: http_call(port, "GET", "/healthz", timeout=5).status == 200, 10,
                         what="every loop connected")
        for _ in range(10):
            self.assertOk(post(port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        self.assertEqual(http_call(port, "GET", "/healthz", timeout=5).json(),
                         {"status": "ok", "nats_rebuilds": 0})


if __name__ == "__main__":
    unittest.main()
