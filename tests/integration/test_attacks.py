"""Attacks on the gateway's edge, as an attacker would try them with raw
sockets and HTTP clients: each must be refused or bounded.

  - cross-site POSTs (CSRF) and CORS preflights (GATEWAY_CORS_ORIGINS)
  - connections and requests per client address, slowloris headers
  - bodies: 413 before reading, chunked past the limit (answered at once,
    the connection closed unread), the gateway-wide
    body memory, a body NATS cannot carry, '%ff' in a path
  - /metrics labels for made-up subjects
  - log lines forged with %0A, invalid UTF-8 in JSON logs, long paths
  - a subject over NRPC_MAX_SUBJECT (it once cut the gateway off NATS)
  - WAMP: PUBLISH on an rpc subject, SUBSCRIBE on one, per-session caps

The browser side of CSRF (a page of another origin in chromium) is in
test_browser.py (CrossSiteTest).
"""

import json
import socket
import threading
import time

import harness
from harness import http_call, post

HELLO = '[["Bob"], {"last_name": "Ross"}]'
HELLO_REPLY = '[["Hello, Bob Ross"], {}]'
EVIL = "https://evil.example"
FRIEND = "https://app.example.com"


def raw(port, data, read=True, timeout=5.0):
    """Sends data on a fresh socket; returns what came back until close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status_of(resp_bytes):
    line = resp_bytes.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 else None


class AttackCase(harness.IntegrationCase):
    def assertError(self, r, code, etype, message):
        """The whole error body, not a prefix."""
        self.assertEqual(r.status, code, r.describe())
        self.assertEqual(r.json(), {"error": {"code": code, "type": etype, "message": message}},
                         r.describe())


class CsrfTest(AttackCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_CORS_ORIGINS": FRIEND +
                                                            ", http://other.example:8080"})
        cls.start_stack("attacks_csrf", start)

    def test_curl_without_origin_still_works(self):
        # curl -d sends application/x-www-form-urlencoded; programs send no Origin.
        for ctype in ("application/x-www-form-urlencoded", "text/plain", "application/json"):
            with self.subTest(ctype=ctype):
                self.assertOk(post(self.port, "greeting_service.hello", HELLO,
                                   headers={"Content-Type": ctype}), HELLO_REPLY)
        r = http_call(self.port, "POST", "/greeting_service.hello", body=HELLO,
                      headers={"Content-Type": "", "Sec-Fetch-Site": "none"})
        self.assertOk(r, HELLO_REPLY)

    def test_cross_site_text_plain_is_refused(self):
        msg = ("this page's origin may not call the gateway: it is neither the gateway's own "
               "nor listed in GATEWAY_CORS_ORIGINS")
        for ctype in ("text/plain", "application/json", "application/x-www-form-urlencoded",
                      "multipart/form-data; boundary=x"):
            with self.subTest(ctype=ctype):
                r = post(self.port, "greeting_service.hello", HELLO,
                         headers={"Origin": EVIL, "Content-Type": ctype})
                self.assertError(r, 403, "forbidden", msg)
                self.assertNotIn("Access-Control-Allow-Origin", r.headers)
        # "null" (sandboxed frames, file://) and look-alikes are not listed.
        for origin in ("null", FRIEND + ".evil.example", FRIEND + "/", "https://app.example.co",
                       "http://app.example.com", FRIEND.upper() + "x", ""):
            with self.subTest(origin=origin):
                r = post(self.port, "greeting_service.hello", HELLO,
                         headers={"Origin": origin, "Content-Type": "application/json"})
                self.assertEqual(r.status, 403, r.describe())

    def test_sec_fetch_site_without_origin_is_refused(self):
        for site in ("cross-site", "same-site"):
            with self.subTest(site=site):
                r = post(self.port, "greeting_service.hello", HELLO,
                         headers={"Sec-Fetch-Site": site})
                self.assertError(r, 403, "forbidden",
                                 "a cross-site request from a browser must carry an Origin that "
                                 "the gateway knows (its own or one in GATEWAY_CORS_ORIGINS)")

    def test_browser_needs_json(self):
        own = "http://127.0.0.1:%d" % self.port
        for origin in (own, FRIEND):
            with self.subTest(origin=origin):
                r = post(self.port, "greeting_service.hello", HELLO,
                         headers={"Origin": origin, "Content-Type": "text/plain"})
                self.assertError(r, 403, "forbidden",
                                 "a request from a browser must send Content-Type: "
                                 "application/json")
                r = post(self.port, "greeting_service.hello", HELLO,
                         headers={"Origin": origin,
                                  "Content-Type": "application/json; charset=utf-8"})
                self.assertOk(r, HELLO_REPLY)

    def test_listed_origin_gets_cors_headers(self):
        r = post(self.port, "greeting_service.hello", HELLO,
                 headers={"Origin": FRIEND, "Content-Type": "application/json"})
        self.assertOk(r, HELLO_REPLY)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), FRIEND)
        self.assertIn("Origin", r.headers.get("Vary", ""))
        # Same origin: no CORS header needed, none given.
        r = post(self.port, "greeting_service.hello", HELLO,
                 headers={"Origin": "http://127.0.0.1:%d" % self.port,
                          "Content-Type": "application/json"})
        self.assertOk(r, HELLO_REPLY)
        self.assertNotIn("Access-Control-Allow-Origin", r.headers)

    def test_preflight(self):
        r = http_call(self.port, "OPTIONS", "/greeting_service.hello",
                      headers={"Origin": "http://other.example:8080",
                               "Access-Control-Request-Method": "POST",
                               "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(r.status, 204, r.describe())
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), "http://other.example:8080")
        self.assertIn("POST", r.headers.get("Access-Control-Allow-Methods", ""))
        self.assertIn("Content-Type", r.headers.get("Access-Control-Allow-Headers", ""))
        self.assertEqual(r.headers.get("Access-Control-Max-Age"), "600")
        r = http_call(self.port, "OPTIONS", "/greeting_service.hello",
                      headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
        self.assertError(r, 403, "forbidden",
                         "this page's origin is not listed in GATEWAY_CORS_ORIGINS")
        self.assertNotIn("Access-Control-Allow-Origin", r.headers)
        r = http_call(self.port, "OPTIONS", "/greeting_service.hello",
                      headers={"Origin": FRIEND, "Access-Control-Request-Method": "TRACE"})
        self.assertEqual(r.status, 403, r.describe())

    def test_many_origins_at_once(self):
        # Concurrent browsers of several origins: each gets its own verdict.
        results = {}

        def one(i):
            origin = FRIEND if i % 2 else EVIL
            r = post(self.port, "greeting_service.hello", HELLO,
                     headers={"Origin": origin, "Content-Type": "application/json"})
            results[i] = (origin, r.status, r.headers.get("Access-Control-Allow-Origin"))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, (origin, status, acao) in results.items():
            if origin == FRIEND:
                self.assertEqual((status, acao), (200, FRIEND))
            else:
                self.assertEqual((status, acao), (403, None))


def partial_post(port, source="127.0.0.1"):
    """A socket that sent half of a request's headers (slowloris)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.sendall(b"POST /greeting_service.hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return s


def closed_by_server(s):
    """True once the server closed s (EOF or reset); never blocks."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


class ConnectionLimitTest(AttackCase):
    PER_ADDRESS = 20

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={
                "GATEWAY_THREADS": "2",
                "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": str(cls.PER_ADDRESS),
                "GATEWAY_HEADER_TIMEOUT": "1"})
        cls.start_stack("attacks_conns", start)

    def test_slowloris_takes_only_its_share_and_times_out(self):
        socks = [partial_post(self.port) for _ in range(200)]
        try:
            # Every loop together holds PER_ADDRESS of them; the rest are closed at once.
            harness.wait_for(lambda: sum(closed_by_server(s) for s in socks) >= 200 - self.PER_ADDRESS,
                             10, what="connections over the per-address cap closed")
            # Another address is served meanwhile.
            conn = __import__("http.client").client.HTTPConnection(
                "127.0.0.1", self.port, timeout=10, source_address=("127.0.0.2", 0))
            conn.request("POST", "/greeting_service.hello", body=HELLO)
            r = conn.getresponse()
            self.assertEqual((r.status, r.read().decode()), (200, HELLO_REPLY))
            conn.close()
            # Headers not in within GATEWAY_HEADER_TIMEOUT: closed, trickle or not.
            for s in socks:
                if not closed_by_server(s):
                    try:
                        s.sendall(b"a")
                    except OSError:
                        pass
            harness.wait_for(lambda: all(closed_by_server(s) for s in socks), 10,
                             what="slow connections closed after the header timeout")
        finally:
            for s in socks:
                s.close()
        # The address may connect again.
        harness.wait_for(lambda: post(self.port, "greeting_service.hello", HELLO).status == 200,
                         10, what="a call from the same address again")

    def test_keepalive_connection_is_not_cut_by_header_timeout(self):
        # A connection whose first request came in time is not the slowloris kind.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for _ in range(3):
            conn.request("POST", "/greeting_service.hello", body=HELLO)
            r = conn.getresponse()
            self.assertEqual((r.status, r.read().decode()), (200, HELLO_REPLY))
        conn.close()


class RateLimitTest(AttackCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={
                "GATEWAY_THREADS": "2", "GATEWAY_RATE_LIMIT": "2", "GATEWAY_RATE_BURST": "10"})
        cls.start_stack("attacks_rate", start)

    def test_burst_then_429_with_retry_after(self):
        statuses = []
        limited = None
        for _ in range(40):
            r = post(self.port, "greeting_service.hello", HELLO)
            statuses.append(r.status)
            if r.status == 429:
                limited = r
                break
        self.assertIsNotNone(limited, statuses)
        # The burst (10), less what the start-up health checks took.
        self.assertGreaterEqual(statuses.count(200), 5, statuses)
        self.assertError(limited, 429, "rate_limited",
                         "too many requests from this address (GATEWAY_RATE_LIMIT); retry after "
                         "the time in Retry-After")
        self.assertEqual(limited.headers.get("Retry-After"), "1")
        # Another address has its own bucket.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                          source_address=("127.0.0.3", 0))
        conn.request("POST", "/greeting_service.hello", body=HELLO)
        r = conn.getresponse()
        self.assertEqual((r.status, r.read().decode()), (200, HELLO_REPLY))
        conn.close()
        # And this one gets tokens back.
        harness.wait_for(lambda: post(self.port, "greeting_service.hello", HELLO).status == 200,
                         10, what="a token again")

    def test_concurrent_clients_share_one_bucket(self):
        harness.wait_for(lambda: post(self.port, "greeting_service.hello", HELLO).status == 200,
                         10, what="a token again")
        results = []
        lock = threading.Lock()

        def one():
            r = post(self.port, "greeting_service.hello", HELLO)
            with lock:
                results.append(r.status)
        threads = [threading.Thread(target=one) for _ in range(60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Both loops draw on one bucket: at most the burst plus what refilled meanwhile.
        self.assertEqual(set(results) - {200, 429}, set(), results)
        self.assertGreater(results.count(429), 0, results)
        self.assertLess(results.count(200), 60, results)


class BodyTest(AttackCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.tight_gw, cls.tight_port = stack.gateway(cls.nats, env={
                "GATEWAY_MAX_BODY_MEMORY": str(1 << 20), "GATEWAY_THREADS": "1"})
        cls.start_stack("attacks_body", start)

    def test_oversize_content_length_is_413_before_the_body(self):
        out = raw(self.port, b"POST /greeting_service.hello HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 5000000\r\n\r\n")
        self.assertEqual(status_of(out), 413, out[:300])
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body, {"error": {"code": 413, "type": "too_large", "message":
                                          "request body of 5000000 bytes exceeds the limit of "
                                          "1046528 bytes"}})

    def test_chunked_past_the_limit_is_413(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(b"POST /greeting_service.hello HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
            for _ in range(17):  # 1,114,112 bytes: past 1,046,528, and not kept
                s.sendall(chunk)
            s.sendall(b"0\r\n\r\n")
            out = b""
            while b"\r\n\r\n" not in out:
                c = s.recv(65536)
                if not c:
                    break
                out += c
        finally:
            s.close()
        self.assertEqual(status_of(out), 413, out[:300])

    # A chunked body has no size to check up front: past the limit it is
    # answered at once and its connection closed, not read on to its end.
    LIMIT = 1046528
    TOO_LARGE = {"error": {"code": 413, "type": "too_large",
                           "message": "request body exceeds the limit of 1046528 bytes"}}

    @staticmethod
    def read_to_close(s, timeout=10):
        """Everything until the gateway closes (EOF or reset after the
        reply); raises socket.timeout if it never does."""
        s.settimeout(timeout)
        out = b""
        while True:
            try:
                c = s.recv(65536)
            except ConnectionResetError:
                return out
            if not c:
                return out
            out += c

    def assertWholeEarlyAnswer(self, out, code, body):
        head, _, got = out.partition(b"\r\n\r\n")
        self.assertEqual(status_of(out), code, out[:300])
        lines = head.split(b"\r\n")
        self.assertIn(b"Connection: close", lines, out[:600])
        self.assertIn(b"Content-Type: application/json", lines, out[:600])
        self.assertIn(b"Content-Length: %d" % len(got), lines, out[:600])
        self.assertEqual(json.loads(got), body, out[:600])

    def endless_chunked(self, port, headers=b"", chunk_size=16 * 1024, stop_after=None):
        """A chunked POST that never ends: chunks until the gateway closes
        (or stop_after bytes, then silence). Returns (bytes sent, reply)."""
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        sent = 0
        try:
            s.sendall(b"POST /greeting_service.hello HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\n" + headers + b"\r\n")
            chunk = b"%x\r\n%s\r\n" % (chunk_size, b"x" * chunk_size)
            try:
                while stop_after is None or sent < stop_after:
                    s.sendall(chunk)
                    sent += chunk_size
                    # Never ending: without an answer it would stream on
                    # forever; 64 MiB is far past any buffering.
                    self.assertLess(sent, 64 << 20, "the gateway read 64 MiB of a refused body")
            except (BrokenPipeError, ConnectionResetError):
                pass
            return sent, self.read_to_close(s)
        finally:
            s.close()

    def test_endless_chunked_body_gets_413_at_the_limit_and_is_closed(self):
        # Past the limit by 64 KiB, then silence: the 413 must come without
        # the body ever ending (it used to wait for the end).
        _, out = self.endless_chunked(self.port, stop_after=self.LIMIT + 64 * 1024)
        self.assertWholeEarlyAnswer(out, 413, self.TOO_LARGE)
        # Streaming on regardless: the gateway closes on it and answers.
        sent, out = self.endless_chunked(self.port)
        self.assertWholeEarlyAnswer(out, 413, self.TOO_LARGE)
        self.assertGreater(sent, self.LIMIT)
        self.assertOk(post(self.port, "greeting_service.hello", HELLO), HELLO_REPLY)
        # A close on purpose is no internal error: no warning per attack.
        self.assertNotIn("Application reported internal error", self.gw.log_text())

    def test_endless_chunked_bodies_at_once_leave_other_clients_alone(self):
        results, errors = [], []

        def attacker():
            try:
                results.append(self.endless_chunked(self.port, chunk_size=4096)[1])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=attacker) for _ in range(8)]
        for t in threads:
            t.start()
        # Meanwhile others are served, with whole answers.
        for _ in range(20):
            self.assertOk(post(self.port, "greeting_service.hello", HELLO), HELLO_REPLY)
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 8)
        for out in results:
            self.assertWholeEarlyAnswer(out, 413, self.TOO_LARGE)
        # A body just within the limit, chunked, still goes through whole.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            body = ('[["' + "z" * 1000 + '"]]').encode()
            s.sendall(b"POST /greeting_service.hello HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                      b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            out = self.read_to_close(s)
        finally:
            s.close()
        self.assertEqual(status_of(out), 200, out[:300])
        self.assertEqual(out.partition(b"\r\n\r\n")[2], b'[["Hello, ' + b"z" * 1000 + b'"], {}]')

    def test_refused_request_with_an_endless_chunked_body_gets_its_answer(self):
        # Refused at the headers (a cross-site text/plain POST): its body is
        # discarded, and past the limit the decided 403 goes out early.
        sent, out = self.endless_chunked(
            self.port, headers=b"Origin: https://evil.example\r\nContent-Type: text/plain\r\n")
        self.assertGreater(sent, self.LIMIT)
        self.assertWholeEarlyAnswer(out, 403, {"error": {
            "code": 403, "type": "forbidden",
            "message": "this page's origin may not call the gateway: it is neither the "
                       "gateway's own nor listed in GATEWAY_CORS_ORIGINS"}})
        self.assertIn(b"Vary: Origin", out.partition(b"\r\n\r\n")[0].split(b"\r\n"))

    def test_body_just_under_1mib_is_413_with_the_real_limit(self):
        body = '[["' + "x" * (1048576 - 100) + '"]]'
        r = post(self.port, "greeting_service.hello", body)
        self.assertError(r, 413, "too_large", "request body of %d bytes exceeds the limit of "
                         "1046528 bytes" % len(body))
        body = '[["' + "x" * (1046528 - 200) + '"]]'
        r = post(self.port, "greeting_service.hello", body)
        self.assertNotIn(r.status, (413, 503), r.describe())

    def test_percent_ff_in_path(self):
        r = http_call(self.port, "POST", "/%ff")
        self.assertError(r, 400, "invalid_argument",
                         "not an rpc subject: '\\xff' (expected <service>.<method> made of "
                         "letters, digits, '_' and '-')")
        r = http_call(self.port, "GET", "/a%ff%00b")
        self.assertEqual(r.status, 404, r.describe())

    def test_half_sent_bodies_are_bounded(self):
        socks = []
        try:
            # Each announces 1,000,000 bytes and sends 300,000: together far past 1 MiB.
            for _ in range(8):
                s = socket.create_connection(("127.0.0.1", self.tight_port), timeout=10)
                s.sendall(b"POST /greeting_service.hello HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 1000000\r\n\r\n" + b"x" * 300000)
                socks.append(s)
            # Those refused are answered as soon as the memory is spent, and
            # closed, while the others' bodies are still coming (never
            # completed here: only refused ones can answer).
            answered = []

            def some_answered():
                for s in socks:
                    s.setblocking(False)
                    try:
                        out = s.recv(65536)
                        if out:
                            answered.append(out)
                    except (BlockingIOError, OSError):
                        pass
                return len(answered) > 0
            harness.wait_for(some_answered, 10, what="a body refused")
            for out in answered:
                self.assertEqual(status_of(out), 503, out[:300])
                self.assertIn(b"Retry-After: 1", out)
                body = json.loads(out.split(b"\r\n\r\n", 1)[1])
                self.assertEqual(body, {"error": {"code": 503, "type": "overloaded", "message":
                                                  "the gateway holds as many unfinished request "
                                                  "bodies as it may (GATEWAY_MAX_BODY_MEMORY, "
                                                  "1048576 bytes); retry later"}})
        finally:
            for s in socks:
                s.close()
        # Given back once those connections are gone.
        harness.wait_for(lambda: post(self.tight_port, "greeting_service.hello",
                                      '[["' + "y" * 600000 + '"]]').status == 200,
                         10, what="body memory given back")


class MetricsAndLogsTest(AttackCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_THREADS": "2"})
            cls.json_gw, cls.json_port = stack.gateway(cls.nats, env={"LOG_FORMAT": "json"})
        cls.start_stack("attacks_metrics", start)

    def metrics(self):
        r = http_call(self.port, "GET", "/metrics")
        self.assertEqual(r.status, 200, r.describe())
        return r.text

    def test_made_up_subjects_do_not_grow_metrics(self):
        harness.wait_for(lambda: "greeting_service.hello" in
                         http_call(self.port, "GET", "/services?refresh=1").text,
                         10, what="the catalog to know greeting_service")
        self.assertOk(post(self.port, "greeting_service.hello", HELLO), HELLO_REPLY)
        post(self.port, "made_up.warmup", "[]")
        before = len(self.metrics())
        for i in range(1100):
            r = post(self.port, "made_up_%d.rpc_%d" % (i, i), "[]")
            self.assertEqual(r.status, 404, r.describe())
        text = self.metrics()
        self.assertNotIn("made_up", text)
        self.assertIn('rpc="greeting_service.hello"', text)
        self.assertIn('natsrpc_gateway_requests_total{rpc="other",status="404"}', text)
        # Counts change, names do not: a few digits more at most.
        self.assertLess(len(text) - before, 200, "grew from %d to %d" % (before, len(text)))

    def test_newline_in_path_cannot_forge_a_log_line(self):
        forged = "2026-01-01T00:00:00.000Z ERROR natsrpc-gateway: forged"
        post(self.port, "greeting_service.hello%0A" + forged.replace(" ", "%20"), "[]")
        http_call(self.port, "GET", "/x%0D%0A" + forged.replace(" ", "%20"))
        post(self.port, "greeting_service.hello", HELLO)  # a line after them
        harness.wait_for(lambda: "POST /greeting_service.hello 200" in self.gw.log_text(), 10,
                         what="the access log line")
        lines = self.gw.log_text().splitlines()
        self.assertFalse([l for l in lines if l.startswith(forged)], "\n".join(lines[-20:]))
        self.assertTrue([l for l in lines if "\\n" + forged in l], "\n".join(lines[-20:]))

    def test_invalid_utf8_path_in_json_logs(self):
        r = post(self.json_port, "bad%ff%fe.x", "[]")
        self.assertEqual(r.status, 400, r.describe())
        harness.wait_for(lambda: "\\\\xff\\\\xfe" in self.json_gw.log_text(), 10,
                         what="the JSON log line with the escaped bytes")
        for line in self.json_gw.log_text().splitlines():
            if line.startswith("{"):
                json.loads(line)  # every line is still JSON

    def test_long_path_is_bounded_in_the_log(self):
        path = "/" + "a" * 8000
        r = http_call(self.port, "GET", path)
        self.assertIn(r.status, (404, 414), r.describe())
        harness.wait_for(lambda: "GET /aaaa" in self.gw.log_text(), 10, what="the log line")
        longest = max(len(l) for l in self.gw.log_text().splitlines() if "GET /aaaa" in l)
        self.assertLess(longest, 600)

    def test_subject_over_the_limit_keeps_nats(self):
        r = post(self.port, "a." + "b" * 5000, "[]")
        self.assertEqual(r.status, 400, r.describe())
        self.assertEqual(http_call(self.port, "GET", "/healthz").status, 200)
        self.assertOk(post(self.port, "greeting_service.hello", HELLO), HELLO_REPLY)


class WampTest(AttackCase):
    """WAMP sessions: the two subject spaces and the per-session caps."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={
                "GATEWAY_WAMP_MAX_SUBSCRIPTIONS": "5", "GATEWAY_WAMP_PUBLISH_RATE": "2",
                "GATEWAY_WAMP_MAX_CALLS": "3"})
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("attacks_wamp", start)

    def client(self):
        from test_websocket import WsClient
        c = WsClient(self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 101)
        self.assertEqual(c.hello()[0], 2)
        return c

    def test_publish_on_an_rpc_subject_runs_nothing(self):
        on_rpc = self.nc.subscribe("greeting_service.hello")
        self.addCleanup(self.nc.unsubscribe, on_rpc)
        self.nc.flush()
        c = self.client()
        c.send_json([16, 1, {"acknowledge": True}, "greeting_service.hello", ["Bob"]])
        self.assertEqual(c.recv_json()[:2], [17, 1])
        c.send_json([48, 2, {}, "greeting_service.hello", ["Bob"]])
        self.assertEqual(c.recv_json(), [50, 2, {}, ["Hello, Bob"]])
        self.nc.flush()
        self.assertEqual([(m.data, m.reply is not None) for m in on_rpc.pending()],
                         [(b'[["Bob"], {}]', True)], "only the CALL reached the rpc subject")

    def test_subscribe_on_an_rpc_subject_keeps_its_fast_404(self):
        c = self.client()
        c.send_json([32, 1, {}, "nobody_serves.this_rpc"])
        self.assertEqual(c.recv_json()[0], 33)
        r = post(self.port, "nobody_serves.this_rpc", "[]", timeout=10)
        self.assertError(r, 404, "not_found", r.json()["error"]["message"])
        self.assertLess(r.elapsed, 5.0, "a 404, not a wait for a timeout")

    def test_subscription_cap(self):
        c = self.client()
        for i in range(5):
            c.send_json([32, i + 1, {}, "cap.topic%d" % i])
            self.assertEqual(c.recv_json()[:2], [33, i + 1])
        c.send_json([32, 6, {}, "cap.topic5"])
        self.assertEqual(c.recv_json(), [8, 32, 6, {}, "natsrpc.error.limit_exceeded", [
            "this session holds 5 subscriptions, the most it may (GATEWAY_WAMP_MAX_SUBSCRIPTIONS)"]])
        # The same topic again is the same subscription, not a new one.
        c.send_json([32, 7, {}, "cap.topic0"])
        self.assertEqual(c.recv_json()[:2], [33, 7])
        # Unsubscribing makes room.
        c.send_json([32, 8, {}, "cap.topic0"])
        sub_id = c.recv_json()[2]
        c.send_json([34, 9, sub_id])
        self.assertEqual(c.recv_json(), [35, 9])
        c.send_json([32, 10, {}, "cap.topic5"])
        self.assertEqual(c.recv_json()[:2], [33, 10])
        # Another session has its own count.
        d = self.client()
        d.send_json([32, 1, {}, "cap.topic9"])
        self.assertEqual(d.recv_json()[:2], [33, 1])

    def test_publish_rate(self):
        c = self.client()
        replies = []
        for i in range(10):
            c.send_json([16, i + 1, {"acknowledge": True}, "rate.topic", []])
            replies.append(c.recv_json())
        ok = [r for r in replies if r[0] == 17]
        refused = [r for r in replies if r[0] == 8]
        self.assertGreaterEqual(len(ok), 4, replies)  # the burst: twice the rate
        self.assertTrue(refused, replies)
        self.assertEqual(refused[0][4:], ["natsrpc.error.limit_exceeded", [
            "too many publications on this session (GATEWAY_WAMP_PUBLISH_RATE)"]])

    def test_calls_in_flight_cap(self):
        c = self.client()
        for i in range(4):
            c.send_json([48, i + 1, {"timeout": 20000}, "greeting_service.hello_sleep",
                         [], {"name": "x", "seconds": 1}])
        first = c.recv_json()
        self.assertEqual(first[:3], [8, 48, 4], first)
        self.assertEqual(first[4], "natsrpc.error.overloaded")


class SettingsTest(AttackCase):
    """The new settings: a malformed value stops the gateway at start with
    a message naming it; an odd GATEWAY_CORS_ORIGINS is only a list."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.odd_gw, cls.odd_port = stack.gateway(cls.nats, env={
                "GATEWAY_CORS_ORIGINS": ",, ,*,null," + "x" * 20000 + ", " + FRIEND + ",,"})
        cls.start_stack("attacks_settings", start)

    def test_malformed_values_refuse_to_start(self):
        cases = [("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "-1"),
                 ("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "ten"),
                 ("GATEWAY_RATE_LIMIT", "1e3"), ("GATEWAY_RATE_LIMIT", "99999999999999999999"),
                 ("GATEWAY_RATE_BURST", "0"), ("GATEWAY_HEADER_TIMEOUT", "0"),
                 ("GATEWAY_HEADER_TIMEOUT", "soon"), ("GATEWAY_MAX_BODY_MEMORY", "12"),
                 ("GATEWAY_WAMP_MAX_SUBSCRIPTIONS", "x"), ("GATEWAY_WAMP_PUBLISH_RATE", "-5"),
                 ("GATEWAY_WAMP_MAX_CALLS", "0")]
        for name, value in cases:
            with self.subTest(name=name, value=value):
                p = harness.Proc("gw-bad", [harness.binary("natsrpc-gateway")],
                                 env={"NATS_URL": self.nats.url, "GATEWAY_PORT": "0",
                                      name: value}).start()
                rc = p.wait(harness.STOP_TIMEOUT)
                if rc is None:
                    p.stop()
                self.assertNotIn(rc, (None, 0), "started with %s=%s" % (name, value))
                self.assertIn("%s=%s" % (name, value), p.log_text())

    def test_odd_cors_list(self):
        r = post(self.odd_port, "greeting_service.hello", HELLO,
                 headers={"Origin": FRIEND, "Content-Type": "application/json"})
        self.assertOk(r, HELLO_REPLY)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), FRIEND)
        # "*" and "null" in the list are not wildcards: they match only themselves.
        r = post(self.odd_port, "greeting_service.hello", HELLO,
                 headers={"Origin": EVIL, "Content-Type": "application/json"})
        self.assertEqual(r.status, 403, r.describe())
        r = post(self.odd_port, "greeting_service.hello", HELLO,
                 headers={"Origin": "x" * 20000, "Content-Type": "application/json"})
        self.assertTrue(r.status == 200 or 400 <= r.status < 500, r.describe())


class ForgedReplyTest(AttackCase):
    """Any service may publish on a caller's inbox (it answers there), so a
    rogue one that saw one reply subject of the gateway's could try to
    answer another call. Reply subjects end in the call's number sealed
    with the caller's key: neighbouring numbers, the old counter form and
    tampered tokens are not replies, and the call gets its real answer."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats, ready_subject="greeting_service.hello_sleep")
            # One loop: both calls share one client, one inbox.
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_THREADS": "1"})
        cls.start_stack("forged_reply", start)

    def test_a_rogue_service_cannot_answer_another_call(self):
        rogue = harness.NatsClient(self.nats.url)
        self.addCleanup(rogue.close)
        sub = rogue.subscribe("rogue_service.x", "q")
        rogue.flush()
        out = {}
        slow = threading.Thread(target=lambda: out.update(slow=harness.post(
            self.port, "greeting_service.hello_sleep", '[["Bob"], {"seconds": 1}]')))
        slow.start()
        self.addCleanup(slow.join)
        # The rogue's own call, sent after the slow one: it sees its reply subject.
        mine = threading.Thread(target=lambda: out.update(mine=harness.post(
            self.port, "rogue_service.x", "[]")))
        mine.start()
        self.addCleanup(mine.join)
        m = sub.next(10)
        inbox, token = m.reply.rsplit(".", 1)
        self.assertRegex(token, r"^[0-9a-f]{32}$")
        forged = b'[["forged"], {}]'
        guesses = ["%x" % n for n in range(0, 300)]  # the counters of old
        for k in range(32):  # the rogue's own token, one digit changed
            guesses.append(token[:k] + ("0" if token[k] != "0" else "1") + token[k + 1:])
        guesses += [token.upper(), token + "0", token[:-1], "c." + token]
        for g in guesses:
            rogue.publish(inbox + "." + g, forged)
        rogue.flush()
        rogue.publish(m.reply, b'[["mine"], {}]')
        rogue.flush()
        mine.join(10)
        slow.join(10)
        self.assertEqual((out["mine"].status, out["mine"].text), (200, '[["mine"], {}]'))
        self.assertEqual((out["slow"].status, out["slow"].text), (200, '[["Hello, Bob"], {}]'),
                         out["slow"].describe())
