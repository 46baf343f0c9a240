"""Errors in one shape, through the gateway and over NATS directly.

HTTP: status == error code, body {"error": {"code", "type", "message"}}.
NATS: the same body plus headers Nats-Service-Error-Code and
Nats-Service-Error.
"""

import time
import unittest

import harness
from harness import post

# (rpc, body, substring the message must contain or None)
BAD_ARGUMENTS = [
    # a required parameter is missing
    ("greeting_service.hello", "[]", "first_name"),
    ("greeting_service.hello", "", "first_name"),
    ("greeting_service.hello", "   ", "first_name"),
    ("greeting_service.hello", "[[]]", "first_name"),
    ("greeting_service.hello", "{}", "first_name"),
    ("greeting_service.hello", '[[], {"last_name": "Ross"}]', "first_name"),
    ("greeting_service.hello_sleep", '[[], {"seconds": 1}]', "name"),
    # unknown keyword
    ("greeting_service.hello", '[["Bob"], {"middle_name": "X"}]', "middle_name"),
    ("greeting_service.hello", '{"first_name": "Bob", "nick": "B"}', "nick"),
    # a parameter given twice, positionally and by name
    ("greeting_service.hello", '[["Bob"], {"first_name": "Bob"}]', "first_name"),
    ("greeting_service.hello", '[["Bob", "Ross"], {"last_name": "Ross"}]', "last_name"),
    # too many positional arguments
    ("greeting_service.hello", '[["Bob", "Ross", "III"]]', None),
    # wrong types
    ("greeting_service.hello", "[[42]]", "first_name"),
    ("greeting_service.hello", "[[null]]", "first_name"),
    ("greeting_service.hello", '[["Bob"], {"last_name": 5}]', "last_name"),
    ("greeting_service.hello", '[[["Bob"]]]', "first_name"),
    ("greeting_service.hello_sleep", '[["Bob", "ten"]]', "seconds"),
    ("greeting_service.hello_sleep", '[["Bob"], {"seconds": true}]', "seconds"),
    # out of range
    ("greeting_service.hello_sleep", '[[], {"name": "Bob", "seconds": 61}]', "seconds"),
    ("greeting_service.hello_sleep", '[[], {"name": "Bob", "seconds": -1}]', "seconds"),
    ("greeting_service.hello_sleep", '[["Bob", 60.5]]', "seconds"),
]

MALFORMED_BODIES = [
    '[["Bob"]',
    '{first_name: "Bob"}',
    "nope",
    '[["Bob"]] trailing',
    "[['Bob']]",
    '[["Bob"], {"last_name": "Ross",}]',
    b'["\xff"]',  # not UTF-8
]

BAD_FORMS = [
    '"Bob"',
    "42",
    "null",
    "true",
    '["Bob"]',
    '[{"first_name": "Bob"}]',
    '[["Bob"], ["Ross"]]',
    '[["Bob"], "Ross"]',
    '[["Bob"], {}, {}]',
]


class ErrorsTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats)
            cls.faulty = stack.service("test_faulty_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("errors", start)

    def both(self, rpc, body, code, etype=None, contains=None):
        """The same request through the gateway and over NATS."""
        r = post(self.port, rpc, body)
        self.assertHttpError(r, code, etype, contains)
        m = self.nc.request(rpc, body, timeout=10)
        self.assertNatsError(m, code, etype, contains, what="NATS %s %r" % (rpc, body))

    def test_bad_arguments_are_400(self):
        for rpc, body, contains in BAD_ARGUMENTS:
            with self.subTest(rpc=rpc, body=body):
                self.both(rpc, body, 400, "invalid_argument", contains)

    def test_malformed_json_is_400(self):
        for body in MALFORMED_BODIES:
            with self.subTest(body=body):
                self.both("greeting_service.hello", body, 400, "invalid_argument")

    def test_bad_body_forms_are_400(self):
        for body in BAD_FORMS:
            with self.subTest(body=body):
                self.both("greeting_service.hello", body, 400, "invalid_argument")

    def test_error_message_header_matches_body(self):
        m = self.nc.request("greeting_service.hello", b"[]", timeout=10)
        self.assertNatsError(m, 400, "invalid_argument", "first_name")
        self.assertIn("first_name", m.headers["Nats-Service-Error"],
                      "Nats-Service-Error should carry the message: %r" % m)

    def test_service_survives_errors(self):
        for _ in range(3):
            post(self.port, "greeting_service.hello", "[[1]]")
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')
        self.assertTrue(self.svc.alive(), "greeting_service died")

    # -- 500 from a faulty handler

    def test_handler_without_reply_is_500(self):
        for _ in range(2):
            self.both("faulty_service.no_reply", "[]", 500, "internal")
        self.assertTrue(self.faulty.alive(), "test_faulty_service died after no_reply")

    def test_handler_failure_is_500(self):
        for _ in range(2):
            self.both("faulty_service.fail", "[]", 500, "internal", "boom")
        self.assertTrue(self.faulty.alive(), "test_faulty_service died after fail")

    def test_faulty_service_still_answers(self):
        self.both("faulty_service.no_reply", "[]", 500, "internal")
        self.both("faulty_service.fail", "[]", 500, "internal", "boom")
        time.sleep(0.2)
        self.assertTrue(self.faulty.alive(), "test_faulty_service exited: %s" % self.faulty.log_tail())
        # it still answers after both kinds of failure
        m = self.nc.request("faulty_service.fail", b"[]", timeout=10)
        self.assertNatsError(m, 500, "internal", "boom", what="faulty_service.fail after failures")
        m = self.nc.request("faulty_service.echo", b'[[1, "a"], {"k": true}]', timeout=10)
        self.assertNatsOk(m, '[[1, "a"], {"k": true}]', what="faulty_service.echo after failures")

    # -- the request forms that are accepted (faulty_service.echo keeps
    #    *args and **kwargs, so every form binds)

    def test_accepted_body_forms(self):
        forms = [
            ('[[1, "a"], {"k": true}]', [[1, "a"], {"k": True}]),
            ('[[1, "a"]]', [[1, "a"], {}]),
            ("[]", [[], {}]),
            ("", [[], {}]),
            (" \r\n\t ", [[], {}]),
            ('{"k": [1, 2]}', [[], {"k": [1, 2]}]),
            ("{}", [[], {}]),
            ('[[], {}]', [[], {}]),
        ]
        for body, want in forms:
            with self.subTest(body=body):
                r = post(self.port, "faulty_service.echo", body)
                self.assertEqual(r.status, 200, r.describe())
                self.assertEqual(r.content_type, "application/json", r.describe())
                self.assertEqual(r.json(), want, r.describe())
                m = self.nc.request("faulty_service.echo", body, timeout=10)
                self.assertNotIn("Nats-Service-Error-Code", m.headers, "NATS %r -> %r" % (body, m))
                self.assertEqual(m.json(), want, "NATS %r -> %r" % (body, m))
        for body in BAD_FORMS + MALFORMED_BODIES:
            with self.subTest(body=body):
                self.both("faulty_service.echo", body, 400, "invalid_argument")


class OverloadTest(harness.IntegrationCase):
    """NRPC_MAX_IN_FLIGHT=4: a fifth concurrent call is refused at once."""

    LIMIT = 4

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats,
                                        env={"NRPC_MAX_IN_FLIGHT": str(cls.LIMIT)})
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("overload", start)

    def test_fifth_call_is_503_overloaded(self):
        payloads = ['[[], {"name": "Sleepy %d", "seconds": 3}]' % i for i in range(self.LIMIT)]
        t0 = time.monotonic()
        sub, replies = self.nc.pipeline_requests("greeting_service.hello_sleep", payloads)
        self.nc.flush()
        time.sleep(0.5)  # let the service take all four

        t5 = time.monotonic()
        m = self.nc.request("greeting_service.hello_sleep", b'[["Fifth", 3]]', timeout=5)
        self.assertNatsError(m, 503, "overloaded", what="5th call over NATS")
        self.assertLess(m.t - t5, 1.0, "overloaded must be refused at once, took %.2fs" % (m.t - t5))
        r = post(self.port, "greeting_service.hello", '[["Bob"]]')
        self.assertHttpError(r, 503, "overloaded")
        self.assertLess(r.elapsed, 1.0, "overloaded must be refused at once: %s" % r.describe())
        refused_at = time.monotonic() - t0
        self.assertLess(refused_at, 2.9, "the 5th call was not refused before the sleeps ended (%.2fs)" % refused_at)

        got = {}
        deadline = time.monotonic() + 15
        while len(got) < self.LIMIT and time.monotonic() < deadline:
            try:
                msg = sub.next(max(0.01, deadline - time.monotonic()))
            except harness.NatsTimeout:
                break
            got[msg.subject] = msg
        self.assertEqual(len(got), self.LIMIT, "only %d of %d in-flight calls answered" % (len(got), self.LIMIT))
        for i, reply in enumerate(replies):
            self.assertNatsOk(got[reply], '[["Hello, Sleepy %d"], {}]' % i, what="in-flight call %d" % i)

        # capacity is back once they are done
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')


if __name__ == "__main__":
    unittest.main()
