"""GATEWAY_AUTH on WebSocket/WAMP: a session is identified at HELLO (WAMP-Ticket
CHALLENGE/AUTHENTICATE, or the handshake's Authorization header or
natsrpc_token cookie, else anonymous); each CALL passes the same permission
check as HTTP (wamp.error.not_authorized with {code: 401 or 403}); each
SUBSCRIBE and PUBLISH passes the topic's access: as the service that owns
the topic declares it (nrpc_event.access/.publish), as the auth file's
"topics" rules say, else the defaults (subscribing needs a session with
credentials, publishing the scope events:publish, and nobody publishes in a
service's topic space unless it says so). Also with the autobahn client
(tests/browser)."""

import json
import os
import signal
import threading
import time

import auth_kit
import harness
from test_browser import require, run_node
from test_websocket import WsClient, WsClosed

ALICE = "alice-token-0123456789abcdef"      # things:write
PUBLISHER = "publisher-token-0123456789abc"  # events:publish
ADMIN = "admin-token-0123456789abcdefgh"    # admin
CHATTER = "chatter-token-0123456789abcdef"  # chat:write events:publish


class AuthWampTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = auth_kit.Keys()

        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            stack.service("websocket_test", cls.nats,
                          ready_subject="websocket_test.hello_websocket")
            # "ev" emits made and other, public to watch; secret is in its
            # space but undeclared.
            cls.ev = stack.service("test_event_service", cls.nats, ready_subject="ev.emit",
                          env={"EVENT_SERVICE": "ev", "EMITS": "made,other",
                               "EVENT_ACCESS": "public"})
            cls.principal = stack.service("test_principal_service", cls.nats,
                                          ready_subject="principal_service.whoami")
            path = auth_kit.write_auth_file(
                stack.dir, cls.keys,
                tokens={ALICE: {"sub": "alice", "scopes": ["things:write"]},
                        PUBLISHER: {"sub": "pub", "scopes": ["events:publish"]},
                        ADMIN: {"sub": "root", "scopes": ["admin"]},
                        CHATTER: {"sub": "chatter", "scopes": ["chat:write", "events:publish"]}},
                topics={"chat.>": {"subscribe": "public", "publish": "chat:write"},
                        "chat.staff": {"subscribe": "admin", "publish": None},
                        "ev.other": {"subscribe": "admin"},
                        # opens no undeclared topic of ev's space (see below)
                        "ev.>": {"subscribe": "public"}})
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_AUTH": path,
                                                            "GATEWAY_WS_HELLO_TIMEOUT": "2"})
        cls.start_stack("auth_wamp", start)

    def client(self, headers=None):
        c = WsClient(self.port, headers=headers)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 101)
        return c

    def hello(self, c, details=None):
        d = {"roles": {"subscriber": {}, "publisher": {}, "caller": {}}}
        d.update(details or {})
        c.send_json([1, "realm1", d])
        return c.recv_json()

    def welcome_details(self, msg, authid, authrole, authmethod):
        self.assertEqual(msg[0], 2, msg)
        self.assertEqual((msg[2]["authid"], msg[2]["authrole"], msg[2]["authmethod"]),
                         (authid, authrole, authmethod), msg)

    def call(self, c, rid, procedure, args=None):
        c.send_json([48, rid, {}, procedure] + ([args] if args is not None else []))
        return c.recv_json()

    def ticket_session(self, ticket, authid="someone"):
        c = self.client()
        self.assertEqual(self.hello(c, {"authmethods": ["ticket"], "authid": authid}),
                         [4, "ticket", {}])
        c.send_json([5, ticket, {}])
        return c, c.recv_json()

    # -- anonymous

    def test_anonymous_session(self):
        c = self.client()
        self.welcome_details(self.hello(c), "anonymous", "anonymous", "anonymous")
        self.assertEqual(self.call(c, 1, "greeting_service.hello", ["Bob"]),
                         [50, 1, {}, ["Hello, Bob"]])
        self.assertEqual(self.call(c, 2, "principal_service.open"), [50, 2, {}, [None], {"admin": False}])
        self.assertEqual(self.call(c, 3, "principal_service.whoami"), [
            8, 48, 3, {}, "wamp.error.not_authorized",
            ["principal_service.whoami needs credentials (Authorization: Bearer or Basic)"],
            {"code": 401, "type": "unauthenticated"}])
        # unknown rpcs are not public
        r = self.call(c, 4, "nosuch_service.x")
        self.assertEqual(r[4], "wamp.error.not_authorized", r)
        # a public topic may be watched, nothing published
        c.send_json([32, 5, {}, "websocket_test.websocket_test"])
        self.assertEqual(c.recv_json()[:2], [33, 5])
        c.send_json([16, 6, {"acknowledge": True}, "websocket_test.websocket_test", [1]])
        self.assertEqual(c.recv_json(), [
            8, 16, 6, {}, "wamp.error.not_authorized",
            ["topic websocket_test.websocket_test needs credentials (Authorization: Bearer or "
             "Basic)"], {"code": 401, "type": "unauthenticated"}])
        # a topic nobody declares or rules needs credentials to watch
        c.send_json([32, 7, {}, "auth_wamp.t"])
        self.assertEqual(c.recv_json(), [
            8, 32, 7, {}, "wamp.error.not_authorized",
            ["topic auth_wamp.t needs credentials (Authorization: Bearer or Basic)"],
            {"code": 401, "type": "unauthenticated"}])

    # -- topics

    def sub(self, c, rid, topic, match=None):
        c.send_json([32, rid, {"match": match} if match else {}, topic])
        return c.recv_json()

    def pub(self, c, rid, topic):
        c.send_json([16, rid, {"acknowledge": True}, topic, [rid]])
        return c.recv_json()

    def refused(self, req, rid, code, message):
        return [8, req, rid, {}, "wamp.error.not_authorized", [message],
                {"code": code, "type": {401: "unauthenticated", 403: "permission_denied"}[code]}]

    def test_topics_anonymous(self):
        c = self.client()
        self.hello(c)
        need = "%s needs credentials (Authorization: Bearer or Basic)"
        # declared public by their services, or ruled public by the file
        for rid, topic in enumerate(["websocket_test.websocket_test", "ev.made", "chat.room",
                                     "chat.a.b"], 1):
            self.assertEqual(self.sub(c, rid, topic)[:2], [33, rid], topic)
        # the file's rule chat.> covers the whole prefix chat.a (events.chat.a.>),
        # but the prefix chat holds chat.staff too, which needs admin
        self.assertEqual(self.sub(c, 10, "chat.a", "prefix")[:2], [33, 10])
        self.assertEqual(self.sub(c, 16, "chat", "prefix"),
                         self.refused(32, 16, 401, need % "prefix chat"))
        # in a service's space but undeclared; not ruled; a prefix nothing covers
        self.assertEqual(self.sub(c, 11, "ev.secret"), self.refused(32, 11, 401, need % "topic ev.secret"))
        self.assertEqual(self.sub(c, 12, "chat"), self.refused(32, 12, 401, need % "topic chat"))
        self.assertEqual(self.sub(c, 13, "ev", "prefix"),
                         self.refused(32, 13, 401, need % "prefix ev"))
        # a rule over a service's space does not open its undeclared topics,
        # neither one by one nor by a prefix under ev.made
        self.assertEqual(self.sub(c, 17, "ev.made.x"),
                         self.refused(32, 17, 401, need % "topic ev.made.x"))
        self.assertEqual(self.sub(c, 18, "ev.made", "prefix"),
                         self.refused(32, 18, 401, need % "prefix ev.made"))
        # the file makes a service's public event stricter, never looser
        self.assertEqual(self.sub(c, 14, "ev.other"), self.refused(32, 14, 401, need % "topic ev.other"))
        self.assertEqual(self.pub(c, 15, "chat.room"), self.refused(16, 15, 401, need % "topic chat.room"))

    def test_topics_with_scopes(self):
        c, w = self.ticket_session(PUBLISHER)  # events:publish
        self.assertEqual(w[0], 2, w)
        # a topic of no service's: the default scope
        self.assertEqual(self.pub(c, 1, "auth_wamp.free")[:2], [17, 1])
        # websocket_test declares its topic open to events:publish
        self.assertEqual(self.pub(c, 2, "websocket_test.websocket_test")[:2], [17, 2])
        # an emitted event is the service's own: nobody forges it, whatever the scopes
        nobody = "nobody may publish on topic %s through the gateway"
        for rid, topic in [(3, "ev.made"), (4, "ev.secret"), (5, "ev"), (6, "chat.staff")]:
            self.assertEqual(self.pub(c, rid, topic), self.refused(16, rid, 403, nobody % topic))
        # the file's rule wants chat:write
        self.assertEqual(self.pub(c, 7, "chat.room"), self.refused(
            16, 7, 403, "topic chat.room needs the scopes 'chat:write'; pub has 'events:publish'"))
        self.assertEqual(self.sub(c, 8, "chat.staff"), self.refused(
            32, 8, 403, "topic chat.staff needs the scopes 'admin'; pub has 'events:publish'"))
        # authenticated: undeclared topics and prefixes without scoped topics under them
        self.assertEqual(self.sub(c, 9, "ev.secret")[:2], [33, 9])
        self.assertEqual(self.sub(c, 10, "auth_wamp", "prefix")[:2], [33, 10])
        # a prefix with a scoped topic under it needs that scope too
        self.assertEqual(self.sub(c, 11, "ev", "prefix"), self.refused(
            32, 11, 403, "prefix ev needs the scopes 'admin'; pub has 'events:publish'"))
        c2, w2 = self.ticket_session(CHATTER)
        self.assertEqual(self.pub(c2, 1, "chat.room")[:2], [17, 1])
        c3, w3 = self.ticket_session(ADMIN)
        self.assertEqual(self.sub(c3, 1, "chat.staff")[:2], [33, 1])
        self.assertEqual(self.sub(c3, 2, "ev", "prefix")[:2], [33, 2])
        self.assertEqual(self.pub(c3, 3, "chat.staff"),
                         self.refused(16, 3, 403, nobody % "chat.staff"))

    def test_services_declare_their_topics(self):
        r = harness.http_call(self.port, "GET", "/services")
        self.assertEqual(r.status, 200, r)
        svcs = {s["name"]: s for s in json.loads(r.body)["services"]}
        self.assertEqual(svcs["websocket_test"]["topics"], [
            {"name": "websocket_test", "subject": "events.websocket_test.websocket_test",
             "description": "What hello_websocket got, and what pages publish: [args, kwargs].",
             "access": "public", "publish": "events:publish"}])
        self.assertEqual([(e["name"], e["access"], "publish" in e) for e in svcs["ev"]["emits"]],
                         [("made", "public", False), ("other", "public", False)])
        self.assertEqual(svcs["greeting_service"]["topics"], [])

    def test_topic_events_reach_only_allowed_subscribers(self):
        # anonymous on ev.made sees an emitted event; a refused SUBSCRIBE
        # never delivers anything.
        anon = self.client()
        self.hello(anon)
        self.assertEqual(self.sub(anon, 1, "ev.made")[:2], [33, 1])
        self.assertEqual(self.sub(anon, 2, "ev.secret")[0], 8)
        r = harness.post(self.port, "ev.emit", json.dumps([["made"], {"kwargs": {"n": 1}}]),
                         headers={"Authorization": "Bearer " + ADMIN})
        self.assertEqual(r.status, 200, r)
        ev = anon.recv_json()
        self.assertEqual((ev[0], ev[5]), (36, {"n": 1}), ev)
        self.assertEqual(ev[3]["topic"], "ev.made", ev)

    def test_socket_closed_while_subscribes_wait_at_the_gate(self):
        # Topics nobody declares: each SUBSCRIBE waits for a catalog gather
        # (about 0.4 s). The socket goes away meanwhile; the verdicts then
        # find no session, and nothing is subscribed or leaked (ASan).
        for _ in range(3):
            c = self.client({"Authorization": "Bearer " + PUBLISHER})
            self.hello(c)
            for i in range(1, 41):
                c.send_json([32, i, {"match": "prefix"} if i % 2 else {}, "gone%d.t" % i])
            c.send_json([48, 99, {}, "nosuch_service.x"])
            c.close()
        c = self.client()
        self.hello(c)
        self.assertEqual(self.sub(c, 1, "websocket_test.websocket_test")[:2], [33, 1])
        self.assertTrue(self.gw.alive(), self.gw.log_tail())
        # no NATS interest is left behind on the closed sessions' topics
        def gone_subjects():
            conns = self.nats.monitor("/connz?subs=detail&limit=1024").get("connections") or []
            return [d["subject"] for c in conns for d in c.get("subscriptions_list_detail") or []
                    if d["subject"].startswith("events.gone")]
        harness.wait_for(lambda: gone_subjects() == [], 10,
                         what="the closed sessions' topics to be dropped")

    def test_subscribe_burst_of_undeclared_topics(self):
        # Topics nobody declares or rules: the first SUBSCRIBE may wait for
        # one catalog gather; the rest of the burst is decided at once from
        # the catalog as it is (at most one gather a second per loop), so a
        # page that subscribes many free topics is not held up, and no more
        # than 64 SUBSCRIBEs of a session ever wait at the gate.
        c = self.client({"Authorization": "Bearer " + PUBLISHER})
        self.hello(c)
        n = 300
        for i in range(1, n + 1):
            c.send_json([32, i, {}, "burst%d.t" % i])
        answers = sorted((c.recv_json() for _ in range(n)), key=lambda a: a[1])
        self.assertEqual([a[:2] for a in answers], [[33, i] for i in range(1, n + 1)])
        self.assertEqual(len({a[2] for a in answers}), n)  # one subscription each

    def listed(self):
        return set(harness.services_listed(self.port))

    def test_a_service_missing_from_a_gather_keeps_its_access(self):
        # A service that misses one $SRV.INFO gather (stopped, busy, a slow
        # route) is not listed by it, but what it declared still holds: its
        # scoped rpc is not open to every signed-in caller, and its topic
        # space does not become free to publish in. The request must not
        # even reach NATS, where the service would run it once it wakes.
        procs = (self.principal, self.ev)
        for p in procs:
            p.signal(signal.SIGSTOP)
        try:
            harness.wait_for(lambda: not {"principal_service", "ev"} & self.listed(), 10,
                             what="a gather without the stopped services")
            got = {}
            t = threading.Thread(target=lambda: got.update(r=harness.post(
                self.port, "principal_service.admin", "[]",
                headers={"Authorization": "Bearer " + ALICE}, timeout=20)))
            t.start()
            c = self.client({"Authorization": "Bearer " + PUBLISHER})
            self.hello(c)
            pub = self.pub(c, 1, "ev.made")
            t.join(1.5)
        finally:
            for p in procs:
                p.signal(signal.SIGCONT)
        t.join(20)
        r = got["r"]
        self.assertEqual((r.status, json.loads(r.body)), (403, {"error": {
            "code": 403, "type": "permission_denied",
            "message": "principal_service.admin needs the scopes 'admin'; alice has "
                       "'things:write'"}}), r)
        self.assertEqual(pub, self.refused(
            16, 1, 403, "nobody may publish on topic ev.made through the gateway"))
        harness.wait_for(lambda: {"principal_service", "ev"} <= self.listed(), 10,
                         what="the services listed again")

    # -- ticket

    def test_ticket_session(self):
        c, w = self.ticket_session(ALICE, authid="ignored")
        self.welcome_details(w, "alice", "user", "ticket")
        self.assertEqual(self.call(c, 1, "principal_service.whoami"),
                         [50, 1, {}, [{"sub": "alice", "scopes": ["things:write"]}], {"admin": False}])
        r = self.call(c, 2, "principal_service.admin")
        self.assertEqual(r, [8, 48, 2, {}, "wamp.error.not_authorized",
                             ["principal_service.admin needs the scopes 'admin'; alice has 'things:write'"],
                             {"code": 403, "type": "permission_denied"}])

    def test_ticket_jwt(self):
        c, w = self.ticket_session(self.keys.token("EdDSA", sub="jwt-alice", scope="admin"))
        self.welcome_details(w, "jwt-alice", "user", "ticket")
        self.assertEqual(self.call(c, 1, "principal_service.admin"), [50, 1, {}, ["yes"]])

    def test_bad_tickets_abort(self):
        for ticket in ["wrong-token-0123456789abcdef", self.keys.token("RS256", exp=1)]:
            with self.subTest(ticket=ticket[:20]):
                c, msg = self.ticket_session(ticket)
                self.assertEqual(msg[0], 3, msg)
                self.assertEqual(msg[2], "wamp.error.not_authorized", msg)

    def test_out_of_order_messages(self):
        # AUTHENTICATE with no CHALLENGE: a protocol violation
        c = self.client()
        self.hello(c)
        c.send_json([5, ALICE, {}])
        msg = c.recv_json()
        self.assertEqual(msg[0], 3, msg)
        self.assertEqual(msg[2], "wamp.error.protocol_violation", msg)
        # a CALL before AUTHENTICATE answers the CHALLENGE: refused, nothing called
        c = self.client()
        self.assertEqual(self.hello(c, {"authmethods": ["ticket"]}), [4, "ticket", {}])
        c.send_json([48, 1, {}, "principal_service.admin"])
        msg = c.recv_json()
        self.assertEqual((msg[0], msg[2]), (3, "wamp.error.protocol_violation"), msg)
        # a second AUTHENTICATE after WELCOME
        c, w = self.ticket_session(ALICE)
        self.assertEqual(w[0], 2)
        c.send_json([5, ALICE, {}])
        msg = c.recv_json()
        self.assertEqual((msg[0], msg[2]), (3, "wamp.error.protocol_violation"), msg)

    def test_a_challenge_left_unanswered_is_closed(self):
        c = self.client()
        self.assertEqual(self.hello(c, {"authmethods": ["ticket"]}), [4, "ticket", {}])
        c.sock.settimeout(10)
        self.assertEqual(c.recv_close(), 1008)

    # -- the handshake's credentials

    def test_authorization_header_in_the_handshake(self):
        c = self.client({"Authorization": "Bearer " + ADMIN})
        self.welcome_details(self.hello(c), "root", "user", "authorization")
        self.assertEqual(self.call(c, 1, "principal_service.admin"), [50, 1, {}, ["yes"]])

    def test_cookie_in_the_handshake(self):
        c = self.client({"Cookie": "other=1; natsrpc_token=" + PUBLISHER})
        self.welcome_details(self.hello(c), "pub", "user", "authorization")
        c.send_json([16, 1, {"acknowledge": True}, "auth_wamp.p", [1]])
        self.assertEqual(c.recv_json()[:2], [17, 1])

    def test_bad_handshake_credentials_abort(self):
        for h in ["Bearer nope-0123456789abcdefghij", "Basic !!", "Bearer " + "a" * 9000]:
            with self.subTest(h=h[:20]):
                c = self.client({"Authorization": h})
                msg = self.hello(c)
                self.assertEqual((msg[0], msg[2]), (3, "wamp.error.not_authorized"), msg)

    def test_sessions_concurrently(self):
        import threading
        errors = []

        def one(i):
            try:
                c, w = self.ticket_session(ALICE if i % 2 else "bad-token-%020d" % i)
                if (w[0] == 2) != bool(i % 2):
                    errors.append((i, w))
                c.close()
            except (WsClosed, OSError) as e:
                errors.append((i, repr(e)))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    # -- autobahn

    def test_autobahn_ticket(self):
        require(False)
        out = run_node(self, "wamp_auth.js", [], {
            "GATEWAY_URL": "http://127.0.0.1:%d" % self.port, "TICKET": ALICE,
            "SCOPED_RPC": "principal_service.admin"}, timeout=60)
        self.assertIn("wamp_auth: passed", out)


class WildcardOriginTest(harness.IntegrationCase):
    """GATEWAY_WS_ORIGINS=* lets pages of any site open the WebSocket, but
    the natsrpc_token cookie, which the browser adds on its own, counts
    only for the gateway's own pages and listed origins (as CORS allows no
    credentials for "*"): a page of another site gets an anonymous session,
    not its visitor's."""

    FRIEND = "https://friend.example"

    @classmethod
    def setUpClass(cls):
        auth_kit.principal_stack(
            cls, "auth_wamp_origin",
            lambda stack, keys: auth_kit.write_auth_file(
                stack.dir, keys, tokens={ALICE: {"sub": "alice", "scopes": ["things:write"]}}),
            env={"GATEWAY_WS_ORIGINS": "*", "GATEWAY_CORS_ORIGINS": cls.FRIEND})

    def welcome(self, origin, headers):
        c = WsClient(self.port, origin=origin, headers=headers)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 101, origin)
        c.send_json([1, "realm1", {"roles": {"caller": {}}}])
        m = c.recv_json()
        self.assertEqual(m[0], 2, m)
        return m[2]["authid"], m[2]["authmethod"]

    def test_the_cookie_counts_only_for_known_origins(self):
        cookie = {"Cookie": "natsrpc_token=" + ALICE}
        own = "http://127.0.0.1:%d" % self.port
        self.assertEqual(self.welcome("https://evil.example", cookie), ("anonymous", "anonymous"))
        self.assertEqual(self.welcome(self.FRIEND, cookie), ("alice", "authorization"))
        self.assertEqual(self.welcome(own, cookie), ("alice", "authorization"))
        self.assertEqual(self.welcome(None, cookie), ("alice", "authorization"))
        # a header is no ambient credential: a page cannot make the browser send it
        self.assertEqual(self.welcome("https://evil.example", {"Authorization": "Bearer " + ALICE}),
                         ("alice", "authorization"))


class NatsKilledAtTheGateTest(harness.IntegrationCase):
    """nats-server is killed while a SUBSCRIBE and CALLs wait at the gate
    for a catalog gather: the calls get their 503 at once, the gateway stays
    up, and the SUBSCRIBE, let through, is confirmed once NATS is back
    (SUBSCRIBED waits for the server to hold the subscription, see
    wamp_confirm.c) and then delivers."""

    @classmethod
    def setUpClass(cls):
        cls.keys = auth_kit.Keys()

        def start(stack):
            cls.nats = stack.nats()
            path = auth_kit.write_auth_file(
                stack.dir, cls.keys, tokens={PUBLISHER: {"sub": "pub", "scopes": ["events:publish"]}})
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_AUTH": path,
                                                            "GATEWAY_THREADS": "1"})
        cls.start_stack("auth_wamp_killed", start)

    def session(self):
        c = WsClient(self.port, headers={"Authorization": "Bearer " + PUBLISHER}, timeout=10)
        self.addCleanup(c.close)
        c.send_json([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}, "caller": {}}}])
        self.assertEqual(c.recv_json()[0], 2)
        return c

    def test_killed_while_checks_wait(self):
        c = self.session()
        time.sleep(1.2)  # the loop has not gathered in the last second: the SUBSCRIBE waits
        c.send_json([32, 1, {}, "killed.t"])
        for i in range(2, 6):  # rpcs nobody knows wait for the same gather
            c.send_json([48, i, {}, "nosuch_service.m%d" % i])
        t_kill = time.monotonic()
        self.nats.proc.signal(signal.SIGKILL)
        self.nats.proc.wait(5)
        answers = [c.recv_json() for _ in range(4)]
        took = time.monotonic() - t_kill
        self.assertLess(took, 3.0, "the calls waited %.2fs after NATS died" % took)
        self.assertEqual(sorted(answers, key=lambda m: m[2]), [
            [8, 48, i, {}, "natsrpc.error.unavailable", ["NATS is not connected"]]
            for i in range(2, 6)])
        self.assertTrue(self.gw.alive(), self.gw.log_tail())

        self.nats.start()  # same port
        subscribed = c.recv_json()
        self.assertEqual(subscribed[:2], [33, 1], subscribed)
        self.assertTrue(self.nats.connections_subscribed("events.killed.t"))
        other = self.session()
        other.send_json([16, 9, {"acknowledge": True}, "killed.t", ["after"]])
        self.assertEqual(other.recv_json()[:2], [17, 9])
        ev = c.recv_json()
        self.assertEqual((ev[0], ev[1], ev[4]), (36, subscribed[2], ["after"]), ev)

if __name__ == "__main__":
    import unittest
    unittest.main()
