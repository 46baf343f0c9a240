"""greeting_service spoken to over NATS directly, without the gateway:
replies, error headers, caller deadlines and the queue group."""

import signal
import time
import unittest

import harness


class DirectTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("direct", start)

    def test_hello(self):
        m = self.nc.request("greeting_service.hello", b'[["Bob"], {"last_name": "Ross"}]')
        self.assertNatsOk(m, '[["Hello, Bob Ross"], {}]', what="hello Bob Ross")

    def test_hello_unpacks_as_headers_data_status(self):
        headers, data, status = self.nc.request("greeting_service.hello", b'{"first_name": "Bob"}')
        self.assertEqual((data, status), (b'[["Hello, Bob"], {}]', None), "headers=%r" % headers)
        self.assertNotIn("Nats-Service-Error-Code", headers)

    def test_error_reply_has_headers(self):
        m = self.nc.request("greeting_service.hello", b'[[], {"last_name": "Ross"}]')
        self.assertNatsError(m, 400, "invalid_argument", "first_name", what="hello without first_name")
        m = self.nc.request("greeting_service.hello_sleep", b'[["Bob", 61]]')
        self.assertNatsError(m, 400, "invalid_argument", "seconds", what="hello_sleep seconds=61")

    def test_unknown_rpc_has_no_responders(self):
        m = self.nc.request("greeting_service.nope", b"[]")
        self.assertTrue(m.no_responders, "expected a no-responders status, got %r" % m)

    def test_endpoints_use_queue_group_q(self):
        conns = self.nats.connections_subscribed("greeting_service.hello")
        self.assertEqual(len(conns), 1, conns)
        groups = {s["subject"]: s.get("qgroup") for s in conns[0]["subscriptions_list_detail"]}
        for subject in ("greeting_service.hello", "greeting_service.hello_sleep"):
            self.assertEqual(groups.get(subject), "q", "queue group of %s (all subs: %r)" % (subject, groups))

    def test_expired_deadline_is_504_without_running(self):
        t0 = time.monotonic()
        m = self.nc.request("greeting_service.hello_sleep", b'[["Bob", 2]]',
                            headers={"Nrpc-Timeout-Ms": "0"}, timeout=10)
        took = m.t - t0
        self.assertNatsError(m, 504, "timeout", what="hello_sleep(2) with Nrpc-Timeout-Ms: 0")
        self.assertLess(took, 1.5, "the 504 must come at once, not after the 2 s handler (%.2fs)" % took)

    def test_future_deadline_runs_normally(self):
        m = self.nc.request("greeting_service.hello", b'[["Bob"]]', headers={"Nrpc-Timeout-Ms": "5000"})
        self.assertNatsOk(m, '[["Hello, Bob"], {}]', what="hello with Nrpc-Timeout-Ms: 5000")
        m = self.nc.request("greeting_service.hello_sleep", b'[["Bob", 0.2]]',
                            headers={"Nrpc-Timeout-Ms": "5000"})
        self.assertNatsOk(m, '[["Hello, Bob"], {}]', what="hello_sleep(0.2) with Nrpc-Timeout-Ms: 5000")

    def test_one_reply_per_request(self):
        sub = self.nc.request_sub("greeting_service.hello", b'[["Bob"]]')
        try:
            first = sub.next(5)
            self.assertNatsOk(first, '[["Hello, Bob"], {}]')
            time.sleep(0.3)
            self.assertEqual(sub.pending(), [], "a second reply arrived on the inbox")
        finally:
            sub.unsubscribe()


class QueueGroupTest(harness.IntegrationCase):
    """Two replicas on one NATS share greeting_service.* in queue group q."""

    N = 50

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.a = stack.service("greeting_service", cls.nats)
            cls.b = stack.service("greeting_service", cls.nats, replicas_expected=2)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("queue", start)

    def sub_msgs(self):
        """{cid: msgs delivered on greeting_service.hello}."""
        out = {}
        for c in self.nats.connections_subscribed("greeting_service.hello"):
            for s in c["subscriptions_list_detail"]:
                if s["subject"] == "greeting_service.hello":
                    out[c["cid"]] = s.get("msgs", 0)
        return out

    def test_1_replicas_share_load_and_reply_once(self):
        before = self.sub_msgs()
        self.assertEqual(len(before), 2, "expected 2 replicas subscribed, got %r" % before)

        payloads = ['[["Bob %d"]]' % i for i in range(self.N)]
        sub, replies = self.nc.pipeline_requests("greeting_service.hello", payloads)
        got = {}
        deadline = time.monotonic() + 10
        while len(got) < self.N and time.monotonic() < deadline:
            try:
                m = sub.next(max(0.01, deadline - time.monotonic()))
            except harness.NatsTimeout:
                break
            got.setdefault(m.subject, []).append(m)
        time.sleep(0.3)
        for m in sub.pending():
            got.setdefault(m.subject, []).append(m)
        sub.unsubscribe()

        missing = [i for i, r in enumerate(replies) if r not in got]
        self.assertEqual(missing, [], "requests without a reply")
        dup = {r: len(v) for r, v in got.items() if len(v) != 1}
        self.assertEqual(dup, {}, "requests answered more than once (reply subject: count)")
        for i, r in enumerate(replies):
            self.assertNatsOk(got[r][0], '[["Hello, Bob %d"], {}]' % i, what="request %d" % i)

        after = self.sub_msgs()
        deltas = {cid: after.get(cid, 0) - n for cid, n in before.items()}
        self.assertEqual(sum(deltas.values()), self.N, "deliveries per replica: %r" % deltas)
        for cid, d in deltas.items():
            self.assertGreaterEqual(d, 1, "replica cid %s got none of %d requests: %r" % (cid, self.N, deltas))

        # one request, wait 300 ms for a stray second reply
        s1 = self.nc.request_sub("greeting_service.hello", b'[["Once"]]')
        first = s1.next(5)
        self.assertNatsOk(first, '[["Hello, Once"], {}]')
        time.sleep(0.3)
        self.assertEqual(s1.pending(), [], "a second reply arrived with two replicas")
        s1.unsubscribe()

    def test_2_survivor_answers_after_sigterm(self):
        self.b.signal(signal.SIGTERM)
        rc = self.b.wait(10)
        self.assertEqual(rc, 0, "replica b: expected exit 0 within 10 s after SIGTERM, got %r" % rc)
        self.nats.wait_subscribers("greeting_service.hello", 1, timeout=10)
        for i in range(10):
            m = self.nc.request("greeting_service.hello", b'[["Bob"]]', timeout=5)
            self.assertNatsOk(m, '[["Hello, Bob"], {}]', what="call %d after stopping one replica" % i)
        self.assertTrue(self.a.alive(), "replica a died")


if __name__ == "__main__":
    unittest.main()
