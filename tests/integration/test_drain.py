"""SIGTERM drains: calls in flight are answered, new calls are not taken,
and the process exits 0."""

import signal
import time
import unittest

import harness
from harness import post


class DrainTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("drain", start)

    def test_1_in_flight_call_survives_sigterm(self):
        svc = self.stack.service("greeting_service", self.nats)
        t0 = time.monotonic()
        sub = self.nc.request_sub("greeting_service.hello_sleep", b'[[], {"name": "Sleepy Bob", "seconds": 2}]')
        self.nc.flush()
        time.sleep(0.3)
        svc.signal(signal.SIGTERM)
        t_term = time.monotonic()

        # the draining process stops taking calls (its subscriptions go away
        # while the 2 s call is still in flight) ...
        try:
            self.nats.wait_subscribers("greeting_service.hello", 0, timeout=1.5)
        except AssertionError as e:
            self.fail("still subscribed 1.5 s after SIGTERM: %s" % e)
        self.assertTrue(svc.alive(), "greeting_service exited before answering the in-flight call")
        # ... so a call sent now is not taken by it
        late = None
        try:
            late = self.nc.request("greeting_service.hello", b'[["Late Bob"]]', timeout=2)
        except harness.NatsTimeout:
            pass
        if late is not None:
            self.assertTrue(late.no_responders,
                            "a call sent after SIGTERM was answered by the draining service: %r" % late)

        try:
            m = sub.next(10)
        except harness.NatsTimeout:
            self.fail("the in-flight hello_sleep got no reply after SIGTERM")
        finally:
            sub.unsubscribe()
        self.assertNatsOk(m, '[["Hello, Sleepy Bob"], {}]', what="in-flight hello_sleep during drain")
        self.assertGreaterEqual(m.t - t0, 1.9, "the sleep was cut short (%.2fs)" % (m.t - t0))

        rc = svc.wait(max(0.1, t_term + 6 - time.monotonic()))
        self.assertIsNotNone(rc, "greeting_service still running 6 s after SIGTERM")
        self.assertEqual(rc, 0, "greeting_service exit status after drain")
        exited = time.monotonic() - t_term
        self.assertLess(exited, 6.0)

        # gone: no responders over NATS, 404 through the gateway
        m = self.nc.request("greeting_service.hello", b'[["Bob"]]', timeout=5)
        self.assertTrue(m.no_responders, "expected no responders after exit, got %r" % m)
        r = post(self.port, "greeting_service.hello", '[["Bob"]]')
        self.assertHttpError(r, 404, "not_found", contains="greeting_service.hello")

    def test_2_idle_service_exits_promptly(self):
        svc = self.stack.service("greeting_service", self.nats)
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')
        t = time.monotonic()
        svc.signal(signal.SIGTERM)
        rc = svc.wait(5)
        self.assertEqual(rc, 0, "idle greeting_service: expected exit 0 within 5 s of SIGTERM, got %r" % rc)
        self.assertLess(time.monotonic() - t, 5.0)

    def test_3_sigint_also_drains(self):
        svc = self.stack.service("greeting_service", self.nats)
        sub = self.nc.request_sub("greeting_service.hello_sleep", b'[["Bob", 1]]')
        self.nc.flush()
        time.sleep(0.3)
        svc.signal(signal.SIGINT)
        try:
            m = sub.next(10)
        except harness.NatsTimeout:
            self.fail("the in-flight hello_sleep got no reply after SIGINT")
        finally:
            sub.unsubscribe()
        self.assertNatsOk(m, '[["Hello, Bob"], {}]', what="in-flight hello_sleep during SIGINT drain")
        rc = svc.wait(6)
        self.assertEqual(rc, 0, "exit status after SIGINT, got %r" % rc)


if __name__ == "__main__":
    unittest.main()
