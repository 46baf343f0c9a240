"""Progress heartbeats: a caller that sends Nrpc-Heartbeat-Ms gets a
heartbeat (header Nrpc-Heartbeat, no body) on its reply subject every
interval while the call runs; one that does not never gets one. The
gateway, outcalls and the CLI ask for them and count two missed heartbeats
(2.5 intervals of silence) as a lost replica: 503 within 3 s of a kill -9,
not after the 60 s timeout. The gateway knows from the services' INFO which
rpcs send them and watches every call to those from the start: no first
heartbeat within 1.5 intervals is a lost reply too (under 2 s for a fast
rpc). A slow call that is alive still succeeds; a responder that is not
natsrpc is waited for until the timeout."""

import concurrent.futures
import json
import signal
import subprocess
import sys
import time
import unittest

import cluster
import harness
from harness import http_call

HB = "Nrpc-Heartbeat"
HB_MS = "Nrpc-Heartbeat-Ms"
DETECT = 3.0  # seconds from the kill of the replica to the caller's 503 (issue 11)
LOST = "no heartbeat from the replica"


def figure(what, seconds):
    sys.stderr.write("\nheartbeat figures: %s answered 503 %.3f s after kill -9 of the replica\n"
                     % (what, seconds))


class HeartbeatTest(harness.IntegrationCase, harness.CliMixin):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.replica = stack.service("greeting_service", cls.nats)
            cls.relay = stack.service("test_faulty_service", cls.nats,
                                      ready_subject="faulty_service.relay")
            # One loop: the test knows which client has seen the subject.
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_THREADS": "1"})
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("heartbeat", start)

    # -- helpers

    def messages_until_reply(self, sub, timeout=10):
        """Every message on sub up to and including the first that is not a
        heartbeat."""
        out = []
        while True:
            m = sub.next(timeout)
            out.append(m)
            if HB not in m.headers:
                return out

    def assert_quiet(self, sub, seconds=0.5):
        with self.assertRaises(harness.NatsTimeout, msg="a message after the reply"):
            sub.next(seconds)

    def sniff(self):
        """A subscription that sees every reply to an inbox: heartbeats show
        there as they pass."""
        sub = self.nc.subscribe("_INBOX.>")
        self.nc.flush()
        self.addCleanup(self.nc.unsubscribe, sub)
        return sub

    @staticmethod
    def wait_heartbeat(sub, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = sub.next(max(0.05, deadline - time.monotonic()))
            except harness.NatsTimeout:
                break
            if HB in m.headers:
                return m
        raise AssertionError("no heartbeat passed within %g s" % timeout)

    def sleeping(self, n):
        harness.wait_for(lambda: cluster.rpc_in_flight(self.nc, "greeting_service", "hello_sleep") == n,
                         10, what="%d hello_sleep call(s) in flight" % n)

    def kill_replica(self):
        """kill -9 of the replica; a new one takes its place for the next
        test. Returns the time of the kill."""
        old = self.replica
        old.signalled = True
        t = time.monotonic()
        old.signal(signal.SIGKILL)
        self.addCleanup(self.new_replica)
        return t

    def new_replica(self):
        self.nats.wait_subscribers("greeting_service.hello", 0)
        type(self).replica = self.stack.service("greeting_service", self.nats)

    # -- the wire contract, seen from a raw NATS client

    def test_raw_request_without_the_header_gets_no_heartbeat(self):
        sub = self.nc.request_sub("greeting_service.hello_sleep", b'[["Raw", 2.5]]')
        self.addCleanup(self.nc.unsubscribe, sub)
        m = sub.next(10)
        self.assertNatsOk(m, '[["Hello, Raw"], {}]', what="hello_sleep(2.5) without the header")
        self.assertNotIn(HB, m.headers)
        self.assert_quiet(sub)

    def test_raw_request_with_the_header_gets_heartbeats_then_the_reply(self):
        sub = self.nc.request_sub("greeting_service.hello_sleep", b'[["Beat", 1]]',
                                  headers={HB_MS: "200"})
        self.addCleanup(self.nc.unsubscribe, sub)
        msgs = self.messages_until_reply(sub)
        beats, reply = msgs[:-1], msgs[-1]
        self.assertNatsOk(reply, '[["Hello, Beat"], {}]', what="hello_sleep(1) with heartbeats")
        self.assertGreaterEqual(len(beats), 1, msgs)
        self.assertEqual([m.headers[HB] for m in beats], [str(i + 1) for i in range(len(beats))])
        for m in beats:
            self.assertEqual(m.data, b"", m)
            self.assertNotIn("Nats-Service-Error-Code", m.headers, m)
        self.assert_quiet(sub)

    def test_fast_calls_and_bad_intervals_get_no_heartbeat(self):
        sub = self.nc.request_sub("greeting_service.hello", b'[["Fast"]]', headers={HB_MS: "100"})
        self.addCleanup(self.nc.unsubscribe, sub)
        self.assertNatsOk(sub.next(5), '[["Hello, Fast"], {}]', what="a fast call")
        self.assert_quiet(sub, 0.3)
        # Out of range or not a whole number: ignored (a 99 ms interval
        # would have sent several during the call).
        for bad in ("99", "0", "-5", "abc", "1e3", "", "100.5", "9" * 30, "60001"):
            with self.subTest(value=bad):
                sub = self.nc.request_sub("greeting_service.hello_sleep", b'[["Bad", 0.5]]',
                                          headers={HB_MS: bad})
                self.addCleanup(self.nc.unsubscribe, sub)
                m = sub.next(5)
                self.assertNatsOk(m, '[["Hello, Bad"], {}]', what="hello_sleep with %s=%r" % (HB_MS, bad))

    # -- callers: slow and alive succeeds; a killed replica is a 503 in seconds

    def test_slow_but_alive_calls_succeed(self):
        sniff = self.sniff()
        r = http_call(self.port, "POST", "/greeting_service.hello_sleep", '[["Slow", 5]]', timeout=30)
        self.assertOk(r, '[["Hello, Slow"], {}]')
        self.wait_heartbeat(sniff, 1)  # they did pass
        r = self.run_cli("call", "greeting_service.hello_sleep", "SlowCli", "5", "--timeout", "30")
        self.assertExit(r, 0)
        self.assertEqual(r.out, '[["Hello, SlowCli"], {}]\n')
        m = self.nc.request("faulty_service.relay",
                            b'[["greeting_service.hello_sleep", ["SlowRelay", 5]], {"timeout": 30}]',
                            timeout=30)
        self.assertNatsOk(m, '[["Hello, SlowRelay"], {}]', what="relay of hello_sleep(5)")

    def test_short_timeouts_ask_for_no_heartbeat(self):
        sniff = self.sniff()
        r = http_call(self.port, "POST", "/greeting_service.hello_sleep?timeout=2.5",
                      '[["Short", 1.5]]', timeout=30)
        self.assertOk(r, '[["Hello, Short"], {}]')
        with self.assertRaises(AssertionError):
            self.wait_heartbeat(sniff, 0.3)

    def test_gateway_answers_503_when_the_replica_is_killed(self):
        sniff = self.sniff()
        t_sent = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            f = ex.submit(http_call, self.port, "POST", "/greeting_service.hello_sleep",
                          '[["Doomed", 30]]', None, 90)
            self.wait_heartbeat(sniff)
            killed = self.kill_replica()
            r = f.result()
        took = time.monotonic() - killed
        figure("gateway, watched from its first heartbeat", took)
        self.assertHttpError(r, 503, "unavailable", LOST)
        self.assertLess(took, DETECT, r.describe())
        self.assertLess(time.monotonic() - t_sent, 30)

    def test_gateway_knows_the_subject_and_watches_from_the_start(self):
        # A heartbeat for an earlier call taught the gateway's client that
        # hello_sleep sends them: a kill before the first heartbeat of the
        # next call is seen as well.
        r = http_call(self.port, "POST", "/greeting_service.hello_sleep", '[["Warm", 1.2]]',
                      timeout=30)
        self.assertOk(r, '[["Hello, Warm"], {}]')
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            f = ex.submit(http_call, self.port, "POST", "/greeting_service.hello_sleep",
                          '[["Early", 30]]', None, 90)
            self.sleeping(1)
            killed = self.kill_replica()
            r = f.result()
        figure("gateway, watched from the start (known rpc)", time.monotonic() - killed)
        self.assertHttpError(r, 503, "unavailable", LOST)
        self.assertLess(time.monotonic() - killed, DETECT, r.describe())

    # -- every call to a natsrpc rpc is watched from the start (the gateway
    # read the INFO marker), so a fast rpc's lost reply shows in 1.5 s

    def catalog_gathered(self):
        """A gather on the gateway's one loop, which tells its client the
        rpcs that send heartbeats before it answers."""
        r = http_call(self.port, "GET", "/services?refresh=1", timeout=30)
        self.assertEqual(r.status, 200, r.describe())
        return r.json()

    def test_info_says_the_service_sends_heartbeats(self):
        m = self.nc.request("$SRV.INFO.greeting_service", b"", timeout=5)
        self.assertEqual(m.json()["metadata"].get("heartbeats"), "true", m)

    def test_gateway_answers_503_in_under_2_s_when_a_fast_rpcs_reply_is_lost(self):
        self.catalog_gathered()
        r = http_call(self.port, "POST", "/greeting_service.hello", '[["Before"]]')
        self.assertOk(r, '[["Hello, Before"], {}]')
        # A stopped process: the request reaches it, the reply never leaves.
        self.replica.signal(signal.SIGSTOP)
        resumed = []

        def resume():
            if not resumed:
                resumed.append(1)
                self.replica.signal(signal.SIGCONT)
        self.addCleanup(resume)
        # A gather now misses the stopped replica; the gateway must still
        # know that hello sends heartbeats.
        self.assertNotIn("greeting_service",
                         [s["name"] for s in self.catalog_gathered()["services"]])
        for i in range(3):  # each call, not only the first
            t = time.monotonic()
            r = http_call(self.port, "POST", "/greeting_service.hello", '[["Lost%d"]]' % i,
                          timeout=30)
            took = time.monotonic() - t
            sys.stderr.write("\nheartbeat figures: greeting_service.hello to a stopped replica "
                             "answered 503 after %.3f s\n" % took)
            self.assertHttpError(r, 503, "unavailable",
                                 "no heartbeat from the replica running greeting_service.hello "
                                 "for 1.5 s: it was lost (the call may have run)")
            self.assertLess(took, 2.0, r.describe())
        resume()
        # Alive again: it answers the calls it had queued (the gateway drops
        # those late replies) and the next ones as usual.
        harness.wait_for(lambda: http_call(self.port, "POST", "/greeting_service.hello",
                                           '[["Again"]]', timeout=30).status == 200,
                         30, what="hello answered after SIGCONT")
        r = http_call(self.port, "POST", "/greeting_service.hello", '[["After"]]')
        self.assertOk(r, '[["Hello, After"], {}]')

    def test_slow_rpc_watched_from_the_start_succeeds(self):
        # Its first heartbeat comes 1 s after the handler started, inside the
        # 1.5 s the gateway allows; the reply after several more.
        self.catalog_gathered()
        rs = []
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            fs = [ex.submit(http_call, self.port, "POST", "/greeting_service.hello_sleep",
                            '[["Alive%d", 3]]' % i, None, 30) for i in range(8)]
            rs = [f.result() for f in fs]
        for i, r in enumerate(rs):
            self.assertOk(r, '[["Hello, Alive%d"], {}]' % i)

    def test_a_responder_that_is_not_natsrpc_is_waited_for_until_the_timeout(self):
        # A plain NATS subscriber sends no heartbeat and is not in the
        # catalog: the gateway waits for its late reply as before.
        self.catalog_gathered()
        plain = harness.NatsClient(self.nats.url)
        self.addCleanup(plain.close)
        sub = plain.subscribe("plain_responder.late")
        plain.flush()
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            f = ex.submit(http_call, self.port, "POST", "/plain_responder.late?timeout=10",
                          '[["x"]]', None, 30)
            m = sub.next(10)
            self.assertEqual(m.headers.get(HB_MS), "1000", m)
            time.sleep(2.5)  # the point of the test: past 1.5 s and 2.5 s of silence
            plain.publish(m.reply, b'[["late"], {}]')
            plain.flush()
            r = f.result()
        self.assertOk(r, '[["late"], {}]')
        # And one that never answers gets the timeout, not "replica lost".
        r = http_call(self.port, "POST", "/plain_responder.late?timeout=3", '[["y"]]', timeout=30)
        self.assertHttpError(r, 504, "timeout", "no reply from plain_responder.late within 3 s")

    def test_cli_answers_503_when_the_replica_is_killed(self):
        sniff = self.sniff()
        cli = subprocess.Popen([harness.binary("natsrpc"), "call", "greeting_service.hello_sleep",
                                "Doomed", "30", "--timeout", "90", "--server", self.nats.url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: cli.poll() is None and cli.kill())
        self.wait_heartbeat(sniff)
        killed = self.kill_replica()
        out, err = cli.communicate(timeout=60)
        took = time.monotonic() - killed
        figure("natsrpc call", took)
        self.assertEqual(cli.returncode, 1, (out, err))
        self.assertEqual(out, b"")
        self.assertIn("error 503 unavailable", err.decode())
        self.assertIn(LOST, err.decode())
        self.assertLess(took, DETECT)

    def test_outcall_answers_503_when_the_replica_is_killed(self):
        sniff = self.sniff()
        sub = self.nc.request_sub(
            "faulty_service.relay",
            json.dumps([["greeting_service.hello_sleep", ["Doomed", 30]], {"timeout": 90}]).encode())
        self.addCleanup(self.nc.unsubscribe, sub)
        self.wait_heartbeat(sniff)
        killed = self.kill_replica()
        m = sub.next(60)
        figure("outcall", time.monotonic() - killed)
        self.assertNatsError(m, 503, "unavailable", LOST, what="relay of hello_sleep(30)")
        self.assertLess(time.monotonic() - killed, DETECT)


if __name__ == "__main__":
    unittest.main()
