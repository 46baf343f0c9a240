"""The gateway's WebSocket endpoint on the wire, with a hand-made client:
frames the browser libraries never send (unmasked, bad UTF-8, too big),
keep-alive pings, slow sockets being dropped, WAMP sessions and the drain.
"""

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import threading
import time
import unittest

import harness

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# The gateway's words for a URI it refuses (ERROR wamp.error.invalid_uri).
TOPIC_RULE = ("a topic must be dot-separated tokens of letters, digits, '_' and '-' (no "
              "wildcards, no '$'), at most %d bytes" % (harness.MAX_SUBJECT - len("events.")))
PROCEDURE_RULE = ("a procedure must be <service>.<method> of letters, digits, '_' and '-' "
                  "(no '$', no _INBOX), at most %d bytes" % harness.MAX_SUBJECT)


class WsClosed(Exception):
    pass


class WsClient:
    """A WebSocket client over a plain socket: masked frames out, any frame in."""

    def __init__(self, port, protocol="wamp.2.json", timeout=5.0, origin=None, headers=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /websocket HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: %s\r\n" % (port, key, protocol))
        if origin:
            req += "Origin: %s\r\n" % origin
        for name, value in (headers or {}).items():
            req += "%s: %s\r\n" % (name, value)
        req += "\r\n"
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WsClosed("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if self.status == 101 and self.headers.get("sec-websocket-accept") != want:
            raise AssertionError("bad Sec-WebSocket-Accept: %r" % self.headers)

    def send_frame(self, op, payload=b"", fin=True, mask=True, rsv=0):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | (rsv << 4) | op
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, m | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, m | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            hdr += key
        self.sock.sendall(hdr + payload)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsClosed("connection closed")
            self.buf += chunk

    def recv_frame(self):
        """(opcode, payload) of the next frame; raises WsClosed at EOF."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert b1 & 0x80 == 0, "server frames must not be masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return b0 & 0x0F, payload

    def recv_close(self):
        """Reads until a close frame; returns its code (None when empty)."""
        while True:
            op, payload = self.recv_frame()
            if op == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def send_json(self, msg):
        self.send_frame(0x1, json.dumps(msg))

    def recv_json(self):
        while True:
            op, payload = self.recv_frame()
            if op == 0x1:
                return json.loads(payload.decode())
            if op == 0x8:
                raise WsClosed("close frame %r" % payload)

    def hello(self, realm="realm1"):
        self.send_json([1, realm, {"roles": {"subscriber": {}, "publisher": {}, "caller": {}}}])
        return self.recv_json()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class WebSocketTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={
                "GATEWAY_WS_MAX_MESSAGE": "4096", "GATEWAY_WS_MAX_QUEUE": "65536",
                "GATEWAY_WS_PING": "0.4", "GATEWAY_ACCESS_LOG": "0",
                "GATEWAY_WS_ORIGINS": "https://app.example",
                "GATEWAY_CORS_ORIGINS": "https://calls.example"})
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("websocket", start)

    def client(self):
        c = WsClient(self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 101)
        self.assertEqual(c.headers.get("sec-websocket-protocol"), "wamp.2.json")
        return c

    # -- handshake

    def test_origin(self):
        own = WsClient(self.port, origin="http://127.0.0.1:%d" % self.port)
        self.addCleanup(own.close)
        self.assertEqual(own.status, 101, "the gateway's own page may connect")
        other = WsClient(self.port, origin="https://elsewhere.example")
        self.addCleanup(other.close)
        self.assertEqual(other.status, 403, "another site's page may not: %r" % other.headers)
        listed = WsClient(self.port, origin="https://app.example")
        self.addCleanup(listed.close)
        self.assertEqual(listed.status, 101, "an origin in GATEWAY_WS_ORIGINS may connect")
        # The origins whose pages may call rpcs over HTTP may use the
        # WebSocket too: one list for both (GATEWAY_CORS_ORIGINS).
        cors = WsClient(self.port, origin="https://calls.example")
        self.addCleanup(cors.close)
        self.assertEqual(cors.status, 101, "an origin in GATEWAY_CORS_ORIGINS may connect")
        # Listed exactly, not by prefix.
        near = WsClient(self.port, origin="https://calls.example.evil")
        self.addCleanup(near.close)
        self.assertEqual(near.status, 403, "not listed: %r" % near.headers)

    # -- frames

    def test_ping_pong(self):
        c = self.client()
        c.send_frame(0x9, b"hi there")
        op, payload = c.recv_frame()
        self.assertEqual((op, payload), (0xA, b"hi there"))

    def test_unmasked_frame_closes_1002(self):
        c = self.client()
        c.send_frame(0x1, "[1]", mask=False)
        self.assertEqual(c.recv_close(), 1002)

    def test_reserved_bits_close_1002(self):
        c = self.client()
        c.send_frame(0x1, "[1]", rsv=4)
        self.assertEqual(c.recv_close(), 1002)

    def test_bad_utf8_closes_1007(self):
        c = self.client()
        c.send_frame(0x1, b"[1, \"\xed\xa0\x80\", {}]")
        self.assertEqual(c.recv_close(), 1007)

    def test_too_big_closes_1009(self):
        c = self.client()
        c.send_frame(0x1, "x" * 3000, fin=False)
        c.send_frame(0x0, "x" * 3000)
        self.assertEqual(c.recv_close(), 1009)

    def test_fragmented_hello(self):
        c = self.client()
        msg = json.dumps([1, "realm1", {"roles": {}}]).encode()
        c.send_frame(0x1, msg[:5], fin=False)
        c.send_frame(0x9, b"in between")
        c.send_frame(0x0, msg[5:9], fin=False)
        c.send_frame(0x0, msg[9:])
        self.assertEqual(c.recv_frame(), (0xA, b"in between"))
        welcome = c.recv_json()
        self.assertEqual(welcome[0], 2)

    def test_close_handshake(self):
        c = self.client()
        c.send_frame(0x8, struct.pack("!H", 1000) + b"bye")
        self.assertEqual(c.recv_close(), 1000)
        with self.assertRaises(WsClosed):
            c.recv_frame()

    # -- keep-alive

    def test_keepalive(self):
        quiet = self.client()  # answers nothing
        alive = self.client()
        deadline = time.monotonic() + 5
        pings = 0
        while time.monotonic() < deadline and pings < 3:
            op, payload = alive.recv_frame()
            if op == 0x9:
                pings += 1
                alive.send_frame(0xA, payload)
        self.assertEqual(pings, 3, "the gateway pings a silent socket")
        # The one that never answered is gone by now (two intervals).
        quiet.sock.settimeout(3)
        with self.assertRaises((WsClosed, ConnectionResetError)):
            while True:
                quiet.recv_frame()

    # -- WAMP

    def test_wamp_session(self):
        c = self.client()
        welcome = c.hello()
        self.assertEqual(welcome[0], 2)
        self.assertTrue(1 <= welcome[1] <= 2 ** 53)
        self.assertIn("broker", welcome[2]["roles"])
        self.assertIn("dealer", welcome[2]["roles"])
        c.send_json([48, 1, {}, "greeting_service.hello", ["Bob"], {"last_name": "Ross"}])
        self.assertEqual(c.recv_json(), [50, 1, {}, ["Hello, Bob Ross"]])
        c.send_json([34, 8, 12345])
        self.assertEqual(c.recv_json(), [8, 34, 8, {}, "wamp.error.no_such_subscription",
                                         ["no such subscription in this session"]])
        # Subscribe twice: one subscription id; exclude_me honoured.
        c.send_json([32, 9, {}, "ws_it.topic"])
        sub = c.recv_json()
        self.assertEqual(sub[:2], [33, 9])
        c.send_json([32, 10, {}, "ws_it.topic"])
        self.assertEqual(c.recv_json(), [33, 10, sub[2]])
        c.send_json([16, 11, {"acknowledge": True}, "ws_it.topic", ["mine"]])
        published = c.recv_json()
        self.assertEqual(published[:2], [17, 11])
        c.send_json([16, 12, {"acknowledge": True, "exclude_me": False}, "ws_it.topic", ["me"]])
        published2 = c.recv_json()
        self.assertEqual(published2[:2], [17, 12])
        event = c.recv_json()
        self.assertEqual(event, [36, sub[2], published2[2], {"topic": "ws_it.topic"}, ["me"]])
        self.nats.wait_subscribers("events.ws_it.topic", 1)
        c.send_json([34, 13, sub[2]])
        self.assertEqual(c.recv_json(), [35, 13])
        self.nats.wait_subscribers("events.ws_it.topic", 0)
        c.send_json([6, {}, "wamp.close.close_realm"])
        self.assertEqual(c.recv_json(), [6, {}, "wamp.close.goodbye_and_out"])
        self.assertEqual(c.recv_close(), 1000)

    def test_call_errors_carry_code_and_type(self):
        c = self.client()
        c.hello()
        c.send_json([48, 2, {}, "nobody.home"])
        self.assertEqual(c.recv_json(), [8, 48, 2, {}, "wamp.error.no_such_procedure",
                                         ["no such rpc: nobody.home"],
                                         {"code": 404, "type": "not_found"}])
        c.send_json([48, 3, {}, "greeting_service.hello", [], {}])
        self.assertEqual(c.recv_json(), [8, 48, 3, {}, "wamp.error.invalid_argument",
                                         ["greeting_service.hello: missing required argument "
                                          "'first_name' (string)"],
                                         {"code": 400, "type": "invalid_argument"}])
        c.send_json([48, 4, {"timeout": 200}, "greeting_service.hello_sleep", [],
                     {"name": "x", "seconds": 5}])
        self.assertEqual(c.recv_json(), [8, 48, 4, {}, "wamp.error.timeout",
                                         ["no reply from greeting_service.hello_sleep within 0.2 s"],
                                         {"code": 504, "type": "timeout"}])

    # -- events: topic T is the NATS subject events.T

    def test_events_live_under_events_prefix(self):
        c = self.client()
        c.hello()
        c.send_json([32, 1, {}, "ws_it.events"])
        sub = c.recv_json()
        self.assertEqual(sub[:2], [33, 1])
        self.nats.wait_subscribers("events.ws_it.events", 1)
        self.assertEqual(len(self.nats.connections_subscribed("ws_it.events")), 0,
                         "the gateway subscribed to the topic itself, not to events.<topic>")
        # A publication on the bare subject is not the topic; a request on
        # events.<topic> is not a publication. Only the last one shows.
        self.nc.publish("ws_it.events", b'[["bare"], {}]')
        self.nc.request_sub("events.ws_it.events", b'[["a request"], {}]')
        self.nc.publish("events.ws_it.events", b'[["from nats"], {"k": 1}]')
        event = c.recv_json()
        self.assertEqual(event[:2], [36, sub[2]])
        self.assertTrue(1 <= event[2] <= 2 ** 53, event)
        self.assertEqual(event[3:], [{"topic": "ws_it.events"}, ["from nats"], {"k": 1}])
        # A WAMP publication goes out on events.<topic>, as [args, kwargs].
        spy = self.nc.subscribe("events.ws_it.events")
        self.nc.flush()
        c.send_json([16, 2, {"acknowledge": True, "exclude_me": False}, "ws_it.events",
                     ["from wamp"], {"n": 2}])
        published = c.recv_json()
        self.assertEqual(published[:2], [17, 2])
        self.assertEqual(c.recv_json(),
                         [36, sub[2], published[2], {"topic": "ws_it.events"}, ["from wamp"], {"n": 2}])
        msg = spy.next(5)
        self.assertEqual((msg.subject, msg.reply, msg.data), ("events.ws_it.events", None,
                                                              b'[["from wamp"], {"n": 2}]'))
        self.assertEqual(msg.headers.get("Nrpc-Wamp-Publication"), str(published[2]))
        self.nc.unsubscribe(spy)

    def test_prefix_subscriptions(self):
        """SUBSCRIBE with match "prefix": every topic under the prefix's
        tokens, each EVENT naming its own topic; an exact subscription to
        the same name is another subscription."""
        c = self.client()
        c.hello()
        c.send_json([32, 1, {"match": "prefix"}, "ws_it_pfx."])
        sub = c.recv_json()
        self.assertEqual(sub[:2], [33, 1])
        self.nats.wait_subscribers("events.ws_it_pfx.>", 1)
        c.send_json([32, 2, {"match": "prefix"}, "ws_it_pfx"])  # the same, without the dot
        self.assertEqual(c.recv_json(), [33, 2, sub[2]])
        c.send_json([32, 3, {}, "ws_it_pfx"])  # exact: another subscription
        exact = c.recv_json()
        self.assertEqual(exact[:2], [33, 3])
        self.assertNotEqual(exact[2], sub[2])
        # SUBSCRIBED may still come before nats-server has the subscription
        self.nats.wait_subscribers("events.ws_it_pfx", 1)
        self.nc.publish("events.ws_it_pfx.thing_created", b'[[1], {}]')
        self.nc.publish("events.ws_it_pfx.a.b", b'[[2], {}]')
        self.nc.publish("events.ws_it_pfxx.c", b'[[3], {}]')  # not under the prefix's token
        self.nc.publish("events.ws_it_pfx", b'[[4], {}]')     # the exact topic only
        # two NATS subscriptions: their deliveries may interleave either way
        got = sorted((c.recv_json() for _ in range(3)), key=lambda e: e[4])
        self.assertEqual([(e[1], e[3], e[4]) for e in got],
                         [(sub[2], {"topic": "ws_it_pfx.thing_created"}, [1]),
                          (sub[2], {"topic": "ws_it_pfx.a.b"}, [2]),
                          (exact[2], {"topic": "ws_it_pfx"}, [4])])
        # and nothing else came (ws_it_pfxx.c is not under the prefix)
        self.nc.publish("events.ws_it_pfx.sentinel", b'[[5], {}]')
        self.assertEqual(c.recv_json()[3:], [{"topic": "ws_it_pfx.sentinel"}, [5]])
        # bad prefixes and match policies
        for i, (opts, topic) in enumerate([({"match": "prefix"}, "a.*"), ({"match": "prefix"}, "."),
                                           ({"match": "prefix"}, "$SRV"),
                                           ({"match": "prefix"}, "a" * 250),
                                           ({"match": "wildcard"}, "a..b"),
                                           ({"match": 7}, "a")], start=10):
            c.send_json([32, i, opts, topic])
            err = c.recv_json()
            self.assertEqual(err[:5], [8, 32, i, {}, "wamp.error.invalid_uri"], (opts, topic))

    def hello_requests(self):
        """num_requests of greeting_service.hello from $SRV.STATS."""
        m = self.nc.request("$SRV.STATS.greeting_service", b"")
        eps = {e["subject"]: e for e in m.json()["endpoints"]}
        return eps["greeting_service.hello"]["num_requests"]

    def test_publish_never_runs_a_handler(self):
        on_rpc = self.nc.subscribe("greeting_service.hello")
        on_event = self.nc.subscribe("events.greeting_service.hello")
        self.nc.flush()
        self.addCleanup(self.nc.unsubscribe, on_rpc)
        self.addCleanup(self.nc.unsubscribe, on_event)
        before = self.hello_requests()
        c = self.client()
        c.hello()
        for i in (1, 2):
            c.send_json([16, i, {"acknowledge": True}, "greeting_service.hello", ["Bob"]])
            self.assertEqual(c.recv_json()[:2], [17, i])
        # The same connection carries the call after the publishes, so the
        # service has seen them (if it ever would) before it answers.
        c.send_json([48, 3, {}, "greeting_service.hello", ["Bob"]])
        self.assertEqual(c.recv_json(), [50, 3, {}, ["Hello, Bob"]])
        self.assertEqual(self.hello_requests() - before, 1, "only the CALL ran the handler")
        self.nc.flush()
        rpc_msgs = on_rpc.pending()
        self.assertEqual([(m.data, m.reply is not None) for m in rpc_msgs],
                         [(b'[["Bob"], {}]', True)], "only the CALL is a request on the rpc")
        self.assertEqual([m.data for m in on_event.pending()], [b'[["Bob"], {}]'] * 2)

    def test_invalid_topics(self):
        c = self.client()
        c.hello()
        longest = "t" * (harness.MAX_SUBJECT - len("events.") - 3) + ".ok"
        bad = ["a.*", "a.>", ">", "*", "$SYS.x", "a..b", ".a", "a.", "a b", "a\tb", "\u00e9.x",
               "t" * (harness.MAX_SUBJECT - len("events.") - 2) + ".ok", "a" * 4055 + ".b"]
        rid = 0
        for topic in bad:
            with self.subTest(topic=topic[:40]):
                rid += 1
                c.send_json([32, rid, {}, topic])
                self.assertEqual(c.recv_json(), [8, 32, rid, {}, "wamp.error.invalid_uri",
                                                 [TOPIC_RULE]])
                rid += 1
                c.send_json([16, rid, {"acknowledge": True}, topic])
                self.assertEqual(c.recv_json(), [8, 16, rid, {}, "wamp.error.invalid_uri",
                                                 [TOPIC_RULE]])
        # The longest topic that fits, and a one-token topic, are fine.
        for topic in (longest, "single"):
            rid += 1
            c.send_json([32, rid, {}, topic])
            self.assertEqual(c.recv_json()[:2], [33, rid])
            self.nats.wait_subscribers("events." + topic, 1)
        self.hello_ok(c, rid + 1)

    def hello_ok(self, c, rid):
        c.send_json([48, rid, {}, "greeting_service.hello", ["Bob"]])
        self.assertEqual(c.recv_json(), [50, rid, {}, ["Hello, Bob"]])

    # -- subjects too long for NATS (a 4 KiB protocol line would cost the
    # gateway its connection)

    def test_too_long_uris_are_invalid(self):
        c = self.client()
        c.hello()
        uri = "a" * 4055 + ".b"
        self.assertEqual(len(uri), 4057)
        c.send_json([48, 1, {}, uri])
        self.assertEqual(c.recv_json(), [8, 48, 1, {}, "wamp.error.invalid_uri", [PROCEDURE_RULE]])
        c.send_json([32, 2, {}, uri])
        self.assertEqual(c.recv_json(), [8, 32, 2, {}, "wamp.error.invalid_uri", [TOPIC_RULE]])
        c.send_json([16, 3, {"acknowledge": True}, uri])
        self.assertEqual(c.recv_json(), [8, 16, 3, {}, "wamp.error.invalid_uri", [TOPIC_RULE]])
        # Again and again, and from a page of another site that is allowed
        # in (GATEWAY_WS_ORIGINS): each refused, the session goes on.
        other = WsClient(self.port, origin="https://app.example")
        self.addCleanup(other.close)
        self.assertEqual(other.status, 101)
        other.hello()
        for rid in range(10, 20):
            for ws in (c, other):
                ws.send_json([48, rid, {}, uri])
                self.assertEqual(ws.recv_json(), [8, 48, rid, {}, "wamp.error.invalid_uri",
                                                  [PROCEDURE_RULE]])
        # One byte too long for a procedure; the longest one is forwarded.
        c.send_json([48, 4, {}, "p" * (harness.MAX_SUBJECT - 1) + ".x"])
        self.assertEqual(c.recv_json(), [8, 48, 4, {}, "wamp.error.invalid_uri", [PROCEDURE_RULE]])
        longest = "p" * (harness.MAX_SUBJECT - 2) + ".x"
        c.send_json([48, 5, {}, longest])
        self.assertEqual(c.recv_json(), [8, 48, 5, {}, "wamp.error.no_such_procedure",
                                         ["no such rpc: " + longest],
                                         {"code": 404, "type": "not_found"}])
        # And the gateway still reaches NATS at once.
        t0 = time.monotonic()
        self.hello_ok(c, 6)
        r = harness.post(self.port, "greeting_service.hello", '[["Bob"]]')
        self.assertOk(r, '[["Hello, Bob"], {}]')
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(harness.http_call(self.port, "GET", "/healthz").status, 200)

    def test_no_such_realm(self):
        c = self.client()
        abort = c.hello("other.realm")
        self.assertEqual(abort[0], 3)
        self.assertEqual(abort[2], "wamp.error.no_such_realm")

    def test_protocol_violations(self):
        for first in ([32, 1, {}, "a.b"], "not json", [1, "realm1"], [99]):
            c = self.client()
            if isinstance(first, str):
                c.send_frame(0x1, first)
            else:
                c.send_json(first)
            abort = c.recv_json()
            self.assertEqual(abort[0], 3, first)
            self.assertEqual(abort[2], "wamp.error.protocol_violation", first)
        c = self.client()
        c.hello()
        c.send_json([1, "realm1", {}])
        self.assertEqual(c.recv_json()[2], "wamp.error.protocol_violation")
        c = self.client()
        c.send_frame(0x2, b"\x91\x01")  # msgpack is not what we agreed on
        self.assertEqual(c.recv_json()[2], "wamp.error.protocol_violation")

    # -- slow sockets

    def test_slow_socket_dropped_others_served(self):
        slow = self.client()
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        fast = self.client()
        for c in (slow, fast):
            c.hello()
            c.send_json([32, 1, {}, "ws_it.flood"])
            self.assertEqual(c.recv_json()[0], 33)
        body = json.dumps([["x" * 2000], {}]).encode()
        n = 6000  # 12 MB: past the 64 KiB queue and what the kernel buffers
        got = []

        def read_fast():
            try:
                while len(got) < n:
                    op, payload = fast.recv_frame()
                    if op == 0x1:
                        got.append(1)
                    elif op == 0x9:
                        fast.send_frame(0xA, payload)
            except (WsClosed, OSError) as e:
                errors.append(e)

        errors = []
        reader = threading.Thread(target=read_fast, daemon=True)
        reader.start()
        for i in range(0, n, 50):
            self.nc.publish_many([self.nc.encode_pub("events.ws_it.flood", body) for _ in range(50)])
            time.sleep(0.002)
        reader.join(20)
        self.assertEqual(len(got), n, "a socket that reads gets everything (%r)" % errors)
        # The slow one was dropped (its unread bytes still sit in the kernel
        # buffers, which a 4 KiB receive window drains at a crawl: the log
        # says it instead).
        harness.wait_for(lambda: "dropping a slow socket" in self.gw.log_text(), 10,
                         what="the gateway to drop the slow socket")

    # -- drain (last: it stops the gateway)

    def test_zz_drain_closes_without_goodbye(self):
        """The drain closes sockets 1001 and says no GOODBYE, which would
        tell a WAMP client (autobahn) not to reconnect."""
        c = self.client()
        c.hello()
        self.gw.signal(signal.SIGTERM)
        op, payload = c.recv_frame()  # the very next frame: no GOODBYE first
        self.assertEqual(op, 0x8, "expected a close frame, got %r %r" % (op, payload))
        self.assertEqual(struct.unpack("!H", payload[:2])[0], 1001)
        self.assertEqual(payload[2:], b"server going away; reconnect")
        c.send_frame(0x8, struct.pack("!H", 1001))
        self.assertEqual(self.gw.wait(15), 0, self.gw.log_tail())



class HelloTimeoutTest(harness.IntegrationCase):
    """A socket that never opens a WAMP session is closed (1008) although it
    is alive; one with a session stays."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.gw, cls.port = stack.gateway(cls.nats, env={
                # Pings far apart: the socket with a session is not read while
                # the test waits on the other one.
                "GATEWAY_WS_HELLO_TIMEOUT": "0.5", "GATEWAY_WS_PING": "30",
                "GATEWAY_ACCESS_LOG": "0"})
        cls.start_stack("ws-hello", start)

    def test_no_hello_is_closed(self):
        silent = WsClient(self.port)
        self.addCleanup(silent.close)
        joined = WsClient(self.port)
        self.addCleanup(joined.close)
        self.assertEqual(joined.hello()[0], 2, "WELCOME")
        started = time.monotonic()
        code = None
        while code is None and time.monotonic() - started < 5:
            op, payload = silent.recv_frame()
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0]
        self.assertEqual(code, 1008, "a socket without HELLO is closed with 1008")
        # The one with a session is still served.
        joined.send_frame(0x9, b"still here")
        while True:
            op, payload = joined.recv_frame()
            if op == 0xA:
                self.assertEqual(payload, b"still here")
                break
            if op == 0x9:
                joined.send_frame(0xA, payload)
            self.assertNotEqual(op, 0x8, "the socket with a session was closed")

if __name__ == "__main__":
    unittest.main()
