"""The HTTP gateway in front of greeting_service: success replies, argument
binding, paths it refuses, body limits and its own timeout."""

import threading
import time
import unittest

import harness
from harness import post, http_call

BOB_ROSS = '[["Hello, Bob Ross"], {}]'
BOB = '[["Hello, Bob"], {}]'


class GatewayTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.small_gw, cls.small_port = stack.gateway(cls.nats, env={"GATEWAY_MAX_BODY": "64"})
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("gateway", start)

    # -- success

    def test_healthz(self):
        r = http_call(self.port, "GET", "/healthz")
        self.assertEqual(r.status, 200, r.describe())

    def test_start_warns_only_that_auth_is_off(self):
        # A warning at every start teaches operators to ignore warnings.
        warns = [line.split(" WARN ", 1)[1] for line in self.gw.log_text().splitlines()
                 if " WARN " in line]
        self.assertEqual(warns, [
            "natsrpc-gateway: AUTH IS OFF: anyone who can reach this gateway can call every rpc "
            "(set GATEWAY_AUTH to a credentials file; see README, \"Putting it on the internet\")"])

    def test_hello_args_and_kwargs(self):
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"], {"last_name": "Ross"}]'), BOB_ROSS)

    def test_hello_without_last_name_has_no_trailing_space(self):
        self.assertOk(post(self.port, "greeting_service.hello", '[["Awake Bob"]]'), '[["Hello, Awake Bob"], {}]')

    def test_binding_forms_are_equivalent(self):
        bodies = [
            '[["Bob", "Ross"]]',
            '[["Bob", "Ross"], {}]',
            '[["Bob"], {"last_name": "Ross"}]',
            '[[], {"first_name": "Bob", "last_name": "Ross"}]',
            '[[], {"last_name": "Ross", "first_name": "Bob"}]',
            '{"first_name": "Bob", "last_name": "Ross"}',
            ' \n [ [ "Bob" ] , { "last_name" : "Ross" } ] \n',
        ]
        for body in bodies:
            with self.subTest(body=body):
                self.assertOk(post(self.port, "greeting_service.hello", body), BOB_ROSS)
        for body in ['[["Bob"]]', '[["Bob"], {}]', '[["Bob", ""]]', '{"first_name": "Bob"}',
                     '[[], {"first_name": "Bob"}]', '{"first_name": "Bob", "last_name": ""}']:
            with self.subTest(body=body):
                self.assertOk(post(self.port, "greeting_service.hello", body), BOB)

    def test_unicode_round_trip(self):
        r = post(self.port, "greeting_service.hello", '[["Zo\\u00eb"], {"last_name": "\u00c5ngstr\u00f6m"}]')
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.json(), [["Hello, Zo\u00eb \u00c5ngstr\u00f6m"], {}], r.describe())

    def test_hello_sleep_does_not_block_hello(self):
        results = {}

        def sleeper():
            results["sleep"] = post(self.port, "greeting_service.hello_sleep",
                                    '[[], {"name": "Sleepy Bob", "seconds": 1}]')

        t = threading.Thread(target=sleeper)
        t.start()
        time.sleep(0.2)
        fast = post(self.port, "greeting_service.hello", '[["Awake Bob"]]')
        t.join(30)
        self.assertOk(fast, '[["Hello, Awake Bob"], {}]')
        self.assertLess(fast.elapsed, 1.0, "hello must not wait behind hello_sleep: %s" % fast.describe())
        slow = results.get("sleep")
        self.assertIsNotNone(slow, "hello_sleep got no answer within 30 s")
        self.assertOk(slow, '[["Hello, Sleepy Bob"], {}]')
        self.assertGreaterEqual(slow.elapsed, 0.9, "hello_sleep(1) answered too early: %s" % slow.describe())
        self.assertLess(slow.elapsed, 5.0, "hello_sleep(1) took far too long: %s" % slow.describe())

    def test_hello_sleep_positional_zero_seconds(self):
        r = post(self.port, "greeting_service.hello_sleep", '[["Bob", 0]]')
        self.assertOk(r, BOB)

    # -- not found

    def test_unknown_rpc_is_404(self):
        r = post(self.port, "greeting_service.nope", '[["Bob"]]')
        self.assertHttpError(r, 404, "not_found", contains="greeting_service.nope")

    def test_unknown_service_is_404(self):
        r = post(self.port, "no_such_service.hello", "[]")
        self.assertHttpError(r, 404, "not_found", contains="no_such_service.hello")

    def test_unknown_get_is_404(self):
        for path in ("/favicon.ico", "/robots.txt", "/greeting_service.hello", "/nope",
                     "/a/b/c", "/$SRV.PING", "/" + "a" * 4055 + ".b"):
            with self.subTest(path=path[:40]):
                r = http_call(self.port, "GET", path)
                self.assertEqual((r.status, r.content_type), (404, "application/json"), r.describe())
                self.assertEqual(r.json(), {"error": {"code": 404, "type": "not_found",
                                                      "message": "no such path: " + path[:200]}})
                r = http_call(self.port, "HEAD", path)
                self.assertEqual((r.status, r.body), (404, b""), r.describe())
        # Another method on an rpc says how to call it.
        r = http_call(self.port, "PUT", "/greeting_service.hello", '[["Bob"]]')
        self.assertEqual(r.status, 405, r.describe())
        self.assertEqual(r.headers.get("Allow"), "POST")
        self.assertEqual(r.json(), {"error": {"code": 405, "type": "method_not_allowed",
                                              "message": "use POST to call greeting_service.hello"}})

    # -- paths the gateway must refuse without publishing

    def test_bad_paths_are_400_and_not_published(self):
        paths = {
            "/greeting_service.*": "greeting_service.*",
            "/greeting_service.>": "greeting_service.>",
            "/$SRV.PING": "$SRV.PING",
            "/$SRV.PING.greeting_service": "$SRV.PING.greeting_service",
            "/_INBOX.x": "_INBOX.x",
            "/a..b": "a..b",
            "/onlyonetoken": "onlyonetoken",
            "/a.b.c": "a.b.c",
            "/.hello": ".hello",
            "/greeting_service.": "greeting_service.",
            "/greeting service.hello": None,
        }
        spy = self.nc.subscribe(">")
        spy2 = self.nc.subscribe("$SRV.>")
        self.nc.flush()
        try:
            for path, subject in paths.items():
                with self.subTest(path=path):
                    if " " in path:
                        path = path.replace(" ", "%20")
                    r = post(self.port, path.lstrip("/"), '[["Bob"]]')
                    self.assertHttpError(r, 400, "invalid_argument")
            # control: a good call is seen by the spy, so silence above means something
            self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), BOB)
            self.nc.flush()
            time.sleep(0.3)
            seen = [m.subject for m in spy.pending() + spy2.pending()]
            self.assertIn("greeting_service.hello", seen, "the '>' spy saw nothing; the check is void")
            # $SRV.INFO is the catalog's own gather (every 5 s, and after a
            # path no REST route serves): never a subject taken from a path.
            leaked = [s for s in seen if s != "$SRV.INFO" and (
                s in paths.values() or s.startswith("$SRV") or s == "_INBOX.x")]
            self.assertEqual(leaked, [], "the gateway published refused subjects (all seen: %r)" % seen)
        finally:
            self.nc.unsubscribe(spy)
            self.nc.unsubscribe(spy2)

    def test_subject_of_4057_bytes_is_400_and_nats_stays_up(self):
        # nats-server closes a connection whose protocol line passes 4 KiB:
        # forwarded, this path used to cut the gateway off NATS for good.
        subject = "a" * 4055 + ".b"
        r = post(self.port, subject, "[]")
        self.assertEqual(r.status, 400, r.describe())
        self.assertEqual(r.json(), {"error": {
            "code": 400, "type": "invalid_argument",
            "message": "not an rpc subject: '%s...' is 4057 bytes, the limit is %d"
                       % ("a" * 64, harness.MAX_SUBJECT)}}, r.describe())
        # The same from another site's page: fetch(url, {mode: "no-cors"})
        # sends a "simple" POST with the page's Origin and text/plain, which
        # the CSRF rule refuses before the path is even looked at.
        r2 = post(self.port, subject, "[]", headers={"Origin": "https://elsewhere.example",
                                                     "Content-Type": "text/plain"})
        self.assertEqual(r2.status, 403, r2.describe())
        t0 = time.monotonic()
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), BOB)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(http_call(self.port, "GET", "/healthz").status, 200)

    def test_subject_length_limit(self):
        longest = "s" * (harness.MAX_SUBJECT - 2) + ".m"
        r = post(self.port, longest, "[]")
        self.assertEqual(r.json(), {"error": {"code": 404, "type": "not_found",
                                              "message": "no such rpc: " + longest}}, r.describe())
        self.assertEqual(r.status, 404)
        r = post(self.port, "s" + longest, "[]")
        self.assertHttpError(r, 400, "invalid_argument", contains="the limit is %d" % harness.MAX_SUBJECT)
        # Again and again: each answered, and the gateway stays connected.
        for _ in range(20):
            self.assertHttpError(post(self.port, "a" * 5000 + ".b", "[]"), 400)
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), BOB)

    # -- body size

    def test_body_over_1mib_is_413(self):
        body = b'[["' + b"a" * (1 << 20) + b'"]]'
        r = post(self.port, "greeting_service.hello", body)
        self.assertHttpError(r, 413, "too_large")

    def test_body_just_under_1mib_is_accepted(self):
        name = "a" * ((1 << 20) - 4096)
        r = post(self.port, "greeting_service.hello", '[["%s"]]' % name)
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.json(), [["Hello, " + name], {}], "reply body differs (len %d)" % len(r.body))

    def test_max_body_is_configurable(self):
        ok = post(self.small_port, "greeting_service.hello", '[["Bob"]]')
        self.assertOk(ok, BOB)
        big = post(self.small_port, "greeting_service.hello", '[["%s"]]' % ("a" * 100))
        self.assertHttpError(big, 413, "too_large")
        # the default gateway still takes the same body
        r = post(self.port, "greeting_service.hello", '[["%s"]]' % ("a" * 100))
        self.assertOk(r, '[["Hello, %s"], {}]' % ("a" * 100))

    # -- gateway timeout

    def test_timeout_query_parameter_gives_504(self):
        r = post(self.port, "greeting_service.hello_sleep?timeout=0.5", '[[], {"name": "Bob", "seconds": 3}]')
        self.assertHttpError(r, 504, "timeout")
        self.assertLess(r.elapsed, 2.5, "timeout=0.5 should answer long before the 3 s sleep: %s" % r.describe())

    def test_timeout_header_gives_504(self):
        r = post(self.port, "greeting_service.hello_sleep", '[[], {"name": "Bob", "seconds": 3}]',
                 headers={"X-Timeout": "0.5"})
        self.assertHttpError(r, 504, "timeout")
        self.assertLess(r.elapsed, 2.5, "X-Timeout: 0.5 should answer long before the 3 s sleep: %s" % r.describe())

    def test_timeout_longer_than_call_succeeds(self):
        r = post(self.port, "greeting_service.hello_sleep?timeout=5", '[[], {"name": "Bob", "seconds": 0}]')
        self.assertOk(r, BOB)


if __name__ == "__main__":
    unittest.main()
