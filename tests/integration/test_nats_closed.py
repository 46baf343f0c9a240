"""A NATS connection that the server closes for good is rebuilt.

nats-server closes a connection that sends a protocol line past its
max_control_line (4 KiB by default), and nats.c then gives up on it: the
connection ends CLOSED and never reconnects. Every natsrpc process must log
that, show it (/healthz, $SRV.STATS) and build a new connection, so that a
normal call succeeds again within 2 s.

The server of the first two classes allows lines of MAX_CONTROL_LINE bytes
only, so a subject that natsrpc accepts (at most 256 bytes) is enough to
make it close the connection that sends it, for real. The third changes the
credentials it accepts, so that it closes every new connection for a while.
The last class uses a server with default settings and the request of
issue 8: a 4,057-character subject, which natsrpc refuses before it reaches
NATS.
"""

import json
import time
import unittest

import harness
from harness import http_call, post
from test_websocket import WsClient

MAX_CONTROL_LINE = 200
SMALL_LINES = "max_control_line: %d\n" % MAX_CONTROL_LINE
# A valid rpc subject within NRPC_MAX_SUBJECT whose PUB line passes the limit.
LONG_SUBJECT = "greeting_service." + "a" * 200
RECOVERY = 2.0  # seconds from the close to a normal call that succeeds

HELLO = '[["Hello, Bob"], {}]'
CLOSED_LOG = "NATS connection closed for good"
REBUILT_LOG = "new NATS connection built"


def recovered_within(seconds, call):
    """Calls call() until it returns true or seconds pass; returns the time it
    took, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if call():
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


class GatewayRebuildTest(harness.IntegrationCase):
    """The gateway's connection is closed by the server; the client builds a
    new one, with the reply inbox and the WAMP subscriptions on it."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats(config=SMALL_LINES)
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
        cls.start_stack("nats-closed-gw", start)

    def health(self):
        r = http_call(self.port, "GET", "/healthz", timeout=5)
        return r, r.json()

    def test_long_subject_closes_the_connection_and_it_is_rebuilt(self):
        self.assertLessEqual(len(LONG_SUBJECT), 256)  # NRPC_MAX_SUBJECT: natsrpc sends it
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        r, body = self.health()
        self.assertEqual((r.status, body), (200, {"status": "ok", "nats_rebuilds": 0}), r.describe())

        # A WAMP subscription made before the close must work after it.
        ws = WsClient(self.port)
        self.addCleanup(ws.close)
        self.assertEqual(ws.hello()[0], 2)
        ws.send_json([32, 1, {}, "closed_it.topic"])
        subscribed = ws.recv_json()
        self.assertEqual(subscribed[:2], [33, 1])

        r = post(self.port, LONG_SUBJECT, "[]", timeout=10)
        self.assertHttpError(r, 503, "unavailable")
        took = recovered_within(
            RECOVERY, lambda: post(self.port, "greeting_service.hello", '[["Bob"]]',
                                   timeout=2).status == 200)
        self.assertIsNotNone(took, "no successful call within %.1f s of the close\n%s"
                             % (RECOVERY, self.gw.log_tail()))
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), HELLO)

        r, body = self.health()
        self.assertEqual((r.status, body), (200, {"status": "ok", "nats_rebuilds": 1}), r.describe())
        log = self.gw.log_text()
        self.assertIn(CLOSED_LOG, log)
        self.assertIn("maximum control line exceeded", log)
        self.assertIn(REBUILT_LOG, log)
        self.assertLess(log.index(CLOSED_LOG), log.index(REBUILT_LOG))

        ws.send_json([16, 2, {"acknowledge": True, "exclude_me": False}, "closed_it.topic",
                      ["after"]])
        self.assertEqual(ws.recv_json()[:2], [17, 2])
        event = ws.recv_json()
        self.assertEqual(event[:2], [36, subscribed[2]])
        self.assertEqual(event[4:], [["after"]])


class ServiceRebuildTest(harness.IntegrationCase):
    """A service's own connection is closed by the server (its outgoing call
    carries the long subject); the runtime rebuilds it."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats(config=SMALL_LINES)
            stack.service("greeting_service", cls.nats)
            cls.svc = stack.service("test_faulty_service", cls.nats,
                                    ready_subject="faulty_service.relay")
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("nats-closed-svc", start)

    def stats(self):
        m = self.nc.request("$SRV.STATS.faulty_service", b"", timeout=2)
        return json.loads(m.data.decode())

    def relay_hello(self):
        try:
            m = self.nc.request("faulty_service.relay", b'[["greeting_service.hello", ["Bob"]]]',
                                timeout=0.5)
        except harness.NatsTimeout:
            return False
        return m.data.decode() == HELLO and not m.headers

    def test_long_subject_closes_the_connection_and_it_is_rebuilt(self):
        self.assertTrue(self.relay_hello(), "relay to hello before the close")
        self.assertEqual(self.stats()["nats"], {"status": "connected", "rebuilds": 0})

        sub = self.nc.request_sub("faulty_service.relay",
                                  json.dumps([[LONG_SUBJECT]]).encode())
        self.addCleanup(self.nc.unsubscribe, sub)
        harness.wait_for(lambda: CLOSED_LOG in self.svc.log_text(), 5,
                         what="the service logging that its connection was closed")
        # The relay call was in flight on the closed connection: it is
        # answered (503) on the new one rather than left to time out.
        m = sub.next(RECOVERY)
        self.assertNatsError(m, 503, "unavailable", what="the relay whose call closed the link")

        took = recovered_within(RECOVERY, self.relay_hello)
        self.assertIsNotNone(took, "no successful call within %.1f s of the close\n%s"
                             % (RECOVERY, self.svc.log_tail()))
        self.assertEqual(self.stats()["nats"], {"status": "connected", "rebuilds": 1})
        log = self.svc.log_text()
        self.assertIn("maximum control line exceeded", log)
        self.assertIn(REBUILT_LOG, log)
        self.assertLess(log.index(CLOSED_LOG), log.index(REBUILT_LOG))


class CredentialsRefusedTest(harness.IntegrationCase):
    """For a while NATS refuses the credentials the processes connect with
    (an operator changed them and reloaded the server): nats.c closes their
    connections for good, again with every new one. The gateway and the
    service keep building new ones, backing off, and are back once the
    credentials are accepted again."""

    AUTH = "authorization { user: nrpc, password: %s }\n"

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats(config=cls.AUTH % "right")
            env = {"NATS_URL": "nats://nrpc:right@127.0.0.1:%d" % cls.nats.port}
            cls.svc = stack.service("greeting_service", cls.nats, env=env)
            cls.gw, cls.port = stack.gateway(cls.nats, env=env)
        cls.start_stack("nats-closed-auth", start)

    def health(self):
        r = http_call(self.port, "GET", "/healthz", timeout=5)
        return r.status, r.json()

    def test_refused_then_accepted_again(self):
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), HELLO)
        self.nats.reload(self.AUTH % "changed")
        harness.wait_for(lambda: self.health()[1]["status"] == "nats connection closed; rebuilding it",
                         10, what="/healthz saying the connection is being rebuilt")
        status, body = self.health()
        self.assertEqual(status, 503, body)
        time.sleep(1.5)  # refused again and again meanwhile
        self.assertTrue(self.svc.alive(), "greeting_service gave up:\n" + self.svc.log_tail())
        self.assertTrue(self.gw.alive(), "the gateway gave up:\n" + self.gw.log_tail())

        self.nats.reload(self.AUTH % "right")
        # Attempts back off to one every 2 s while refused.
        took = recovered_within(5.0, lambda: post(self.port, "greeting_service.hello", '[["Bob"]]',
                                                  timeout=2).status == 200)
        self.assertIsNotNone(took, "no successful call within 5 s of the credentials' return\n%s\n%s"
                             % (self.gw.log_tail(), self.svc.log_tail()))
        status, body = self.health()
        self.assertEqual(status, 200, body)
        self.assertGreaterEqual(body["nats_rebuilds"], 1)
        # Backing off: a handful of new connections in these seconds, not one
        # per millisecond.
        self.assertLess(body["nats_rebuilds"], 20, body)
        for proc in (self.gw, self.svc):
            log = proc.log_text()
            self.assertIn(CLOSED_LOG, log)
            self.assertIn(REBUILT_LOG, log)
            self.assertLess(log.count(CLOSED_LOG), 20, proc.log_tail())


class IssueRequestTest(harness.IntegrationCase):
    """The request of issue 8 against a server with default settings: refused
    with 400 before it reaches NATS, so the connection stays up."""

    ISSUE_SUBJECT = "a" * 4055 + ".b"  # 4,057 characters

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
        cls.start_stack("nats-closed-issue", start)

    def test_issue_request_is_400_and_the_next_call_works(self):
        self.assertEqual(len(self.ISSUE_SUBJECT), 4057)
        r = post(self.port, self.ISSUE_SUBJECT, "[]", timeout=10)
        self.assertHttpError(r, 400, "invalid_argument")
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]', timeout=2), HELLO)
        r = http_call(self.port, "GET", "/healthz", timeout=5)
        self.assertEqual((r.status, r.json()), (200, {"status": "ok", "nats_rebuilds": 0}),
                         r.describe())
        self.assertNotIn(CLOSED_LOG, self.gw.log_text())


if __name__ == "__main__":
    unittest.main()
