"""NATS goes away and comes back: the gateway answers 503 meanwhile, then the
gateway and the service reconnect by themselves."""

import sys
import time
import unittest

import harness
from harness import http_call, post

RECOVER_TIMEOUT = 15.0  # nats.c waits ~2 s between reconnect attempts


class ReconnectTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
        cls.start_stack("reconnect", start)

    def test_1_nats_down_then_back(self):
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')

        self.nats.stop()
        t_down = time.monotonic()
        harness.wait_for(lambda: http_call(self.port, "GET", "/healthz", timeout=5).status == 503, 10,
                         what="GET /healthz 503 while NATS is down")
        health = http_call(self.port, "GET", "/healthz", timeout=5)
        self.assertEqual(health.status, 503, health.describe())
        r = post(self.port, "greeting_service.hello", '[["Bob"]]', timeout=15)
        self.assertHttpError(r, 503, "unavailable")
        self.assertLess(r.elapsed, 5.0, "a call while NATS is down should fail fast: %s" % r.describe())
        self.assertTrue(self.svc.alive(), "greeting_service exited while NATS was down")
        self.assertTrue(self.gw.alive(), "the gateway exited while NATS was down")

        time.sleep(max(0.0, 1.0 - (time.monotonic() - t_down)))
        self.nats.start()  # same port
        t_up = time.monotonic()
        last = {}

        def recovered():
            h = http_call(self.port, "GET", "/healthz", timeout=5)
            last["healthz"] = h
            if h.status != 200:
                return False
            p = post(self.port, "greeting_service.hello", '[["Bob"]]', timeout=5)
            last["post"] = p
            return p.status == 200

        try:
            harness.wait_for(recovered, RECOVER_TIMEOUT, interval=0.2, what="recovery after NATS restart")
        except AssertionError as e:
            self.fail("%s; last answers: %s" % (e, {k: v.describe() for k, v in last.items()}))
        sys.stderr.write("\n  recovered %.2fs after nats-server restart\n" % (time.monotonic() - t_up))
        self.assertOk(last["post"], '[["Hello, Bob"], {}]')
        with harness.NatsClient(self.nats.url) as nc:
            m = nc.request("greeting_service.hello", b'[["Bob"], {"last_name": "Ross"}]')
            self.assertNatsOk(m, '[["Hello, Bob Ross"], {}]', what="direct call after reconnect")

    def test_2_service_started_before_nats(self):
        port = harness.free_port()
        late = harness.Nats(self.stack, port=port, name="late-nats")
        svc = self.stack.service("greeting_service", late, ready_subject="")
        time.sleep(1.0)
        self.assertTrue(svc.alive(), "greeting_service gave up when NATS was not there: %s" % svc.log_tail())
        late.start()
        late.wait_subscribers("greeting_service.hello", 1, timeout=RECOVER_TIMEOUT)
        with harness.NatsClient(late.url) as nc:
            m = nc.request("greeting_service.hello", b'[["Early Bob"]]')
            self.assertNatsOk(m, '[["Hello, Early Bob"], {}]', what="service that started before NATS")


if __name__ == "__main__":
    unittest.main()
