"""Many calls at once: hello_sleep waits without holding a thread, so 1,000
concurrent sleeps finish in about one second and a hello sent meanwhile is
not queued behind them."""

import sys
import threading
import time
import unittest

import harness
from harness import post

N_DIRECT = 1000
N_HTTP = 200


class ConcurrencyTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("concurrency", start)

    def test_1000_sleeps_over_nats(self):
        threads_before = self.svc.threads()
        payloads = ['[[], {"name": "Sleepy %d", "seconds": 1}]' % i for i in range(N_DIRECT)]
        t0 = time.monotonic()
        sub, replies = self.nc.pipeline_requests("greeting_service.hello_sleep", payloads)
        self.nc.flush()
        t_sent = time.monotonic() - t0

        time.sleep(0.2)
        threads_during = [self.svc.threads()]
        with harness.NatsClient(self.nats.url) as other:
            th = time.monotonic()
            fast = other.request("greeting_service.hello", b'[["Awake Bob"]]', timeout=10)
            fast_took = fast.t - th
        threads_during.append(self.svc.threads())

        got = {}
        deadline = t0 + 10.0
        while len(got) < N_DIRECT and time.monotonic() < deadline:
            try:
                m = sub.next(max(0.01, min(0.2, deadline - time.monotonic())))
            except harness.NatsTimeout:
                if self.svc.alive():
                    threads_during.append(self.svc.threads())
                continue
            got[m.subject] = m
        elapsed = max((m.t for m in got.values()), default=time.monotonic()) - t0
        sub.unsubscribe()
        sys.stderr.write("\n  %d hello_sleep(1) over NATS: sent in %.3fs, %d answered, last after %.3fs; "
                         "hello meanwhile %.3fs; threads before %d, during max %d\n"
                         % (N_DIRECT, t_sent, len(got), elapsed, fast_took, threads_before, max(threads_during)))

        self.assertNatsOk(fast, '[["Hello, Awake Bob"], {}]', what="hello during the sleeps")
        self.assertLess(fast_took, 1.0, "hello waited %.3fs behind the sleeps" % fast_took)
        self.assertEqual(len(got), N_DIRECT, "only %d of %d sleeps answered within 10 s" % (len(got), N_DIRECT))
        bad = []
        for i, r in enumerate(replies):
            if got[r].data.decode() != '[["Hello, Sleepy %d"], {}]' % i or got[r].headers:
                bad.append((i, got[r]))
        self.assertEqual(bad[:5], [], "%d wrong replies (first 5 shown)" % len(bad))
        early = [i for i, r in enumerate(replies) if got[r].t - t0 < 0.9]
        self.assertEqual(early[:5], [], "%d sleeps answered before 1 s" % len(early))
        self.assertLessEqual(max(threads_during), 16, "service threads during the calls: %r" % threads_during)
        self.assertLessEqual(max(threads_during) - threads_before, 2,
                             "threads grew from %d to %r" % (threads_before, threads_during))

    def test_200_sleeps_through_gateway(self):
        results = [None] * N_HTTP
        errors = []
        start = threading.Barrier(N_HTTP + 1)

        def call(i):
            try:
                start.wait(30)
                results[i] = post(self.port, "greeting_service.hello_sleep",
                                  '[[], {"name": "Sleepy %d", "seconds": 1}]' % i, timeout=60)
            except Exception as e:  # noqa: BLE001
                errors.append((i, repr(e)))

        workers = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(N_HTTP)]
        for w in workers:
            w.start()
        start.wait(30)
        t0 = time.monotonic()
        time.sleep(0.3)
        fast = post(self.port, "greeting_service.hello", '[["Awake Bob"]]', timeout=30)
        for w in workers:
            w.join(max(0.1, t0 + 30 - time.monotonic()))
        elapsed = time.monotonic() - t0
        done = [r for r in results if r is not None]
        sys.stderr.write("\n  %d hello_sleep(1) through the gateway: %d answered in %.3fs "
                         "(slowest call %.3fs); hello meanwhile %.3fs\n"
                         % (N_HTTP, len(done), elapsed, max((r.elapsed for r in done), default=0),
                            fast.elapsed))

        self.assertOk(fast, '[["Hello, Awake Bob"], {}]')
        self.assertLess(fast.elapsed, 1.0, "hello waited behind the sleeps: %s" % fast.describe())
        self.assertEqual(errors[:5], [], "%d calls failed at the client" % len(errors))
        self.assertEqual(len(done), N_HTTP, "only %d of %d calls answered" % (len(done), N_HTTP))
        for i, r in enumerate(results):
            self.assertOk(r, '[["Hello, Sleepy %d"], {}]' % i)
        self.assertLess(elapsed, 20.0, "200 one-second sleeps took %.1fs" % elapsed)


if __name__ == "__main__":
    unittest.main()
