"""Events next to rpcs, on JetStream: fan-out once per handling service,
redelivery with backoff, dead letters, durability while a handler is down
or nats-server restarts, hostile event bodies, and what $SRV.INFO and
$SRV.STATS say about events.

One nats-server -js; test_event_service (tests/support/event_service.c)
plays every part: the emitter "emitter" (events ping and big), and handling
services that report each delivery on events.handled.<service>.
"""

import json
import time

import harness
from harness import js_api, js_messages, js_publish

# Short delays so that redeliveries fit in a test.
FAST = {"NRPC_EVENT_BACKOFF_MS": "100", "NRPC_EVENT_MAX_DELIVER": "3"}
WAIT = 10.0


class EventsTest(harness.IntegrationCase):

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.emitter = cls.start_service(stack, "emitter", EMITS="ping,big")
            cls.nc = harness.NatsClient(cls.nats.url)
            cls.handled = cls.nc.subscribe("events.handled.>")
            cls.nc.flush()

        cls.start_stack("events", start)

    @classmethod
    def start_service(cls, stack, name, replicas_expected=None, **env):
        e = dict(FAST, EVENT_SERVICE=name)
        e.update(env)
        return stack.service("test_event_service", cls.nats, env=e, ready_subject=name + ".emit",
                             replicas_expected=replicas_expected)

    def emit(self, event="ping", kwargs=None, id=None, count=1, service="emitter"):
        m = self.nc.request(service + ".emit", json.dumps(
            {"event": event, "kwargs": kwargs or {}, "id": id, "count": count}), timeout=10)
        self.assertNotIn("Nats-Service-Error-Code", m.headers, repr(m))
        return m.json()[0]

    def reports(self, service, want, timeout=WAIT, settle=0.5):
        """Delivery reports of service until want(reports) holds, then
        settle seconds more (to catch duplicates)."""
        got, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline and not want(got):
            try:
                m = self.handled.next(0.2)
            except harness.NatsTimeout:
                continue
            got.append((m.subject, m.json()[1]))
        self.assertTrue(want(got), "reports so far: %r" % got[-20:])
        end = time.monotonic() + settle
        while time.monotonic() < end:
            try:
                m = self.handled.next(0.1)
                got.append((m.subject, m.json()[1]))
            except harness.NatsTimeout:
                pass
        return [r for s, r in got if s == "events.handled." + service]

    def drain_reports(self):
        self.handled.pending()

    def stats(self, service):
        sub = self.nc.request_sub("$SRV.STATS." + service)
        out, end = [], time.monotonic() + 0.5
        while time.monotonic() < end:
            try:
                out.append(sub.next(0.1).json())
            except harness.NatsTimeout:
                pass
        sub.unsubscribe()
        return out

    def handler_stats(self, service, key):
        """key summed over the replicas of service (one handler each)."""
        return sum(s["events"]["handlers"][0][key] for s in self.stats(service))

    # ------------------------------------------------------------------

    def test_fan_out_once_per_service(self):
        """Two handling services of two replicas each: every event is
        handled exactly once by each service, spread over its replicas."""
        for name in ("fan_a", "fan_b"):
            self.start_service(self.stack, name, HANDLES="emitter.ping")
            self.start_service(self.stack, name, HANDLES="emitter.ping", replicas_expected=2)
        self.drain_reports()
        n = 60
        self.assertEqual(self.emit(id="fan", count=n), [n, 0])
        ids = {"fan-%d" % i for i in range(n)}
        seen = {"fan_a": [], "fan_b": []}

        def all_in(got):
            for svc in seen:
                seen[svc] = [r for s, r in got if s == "events.handled." + svc]
            return all({r["id"] for r in v} >= ids for v in seen.values())

        self.reports("fan_a", all_in, settle=1.0)
        for svc, reps in seen.items():
            mine = [r for r in reps if r["id"] in ids]
            self.assertEqual(sorted(r["id"] for r in mine), sorted(ids),
                             "%s: each event exactly once" % svc)
            self.assertTrue(all(r["ok"] and r["attempt"] == 1 for r in mine), mine[:5])
            pids = {r["pid"] for r in mine}
            self.assertEqual(len(pids), 2, "%s: both replicas share the work: %r" % (svc, pids))
        self.assertEqual(sum(s["events"]["emitted"] for s in self.stats("emitter")) >= n, True)

    def test_redelivery_with_backoff(self):
        """A handler that fails twice then succeeds gets the event three
        times, the same id each time, with a delay between tries."""
        self.start_service(self.stack, "retry", HANDLES="emitter.ping", FAIL_FIRST="2")
        self.drain_reports()
        self.emit(id="retry-1", kwargs={"k": "v"})
        reps = self.reports("retry", lambda g: any(r.get("ok") and r["id"] == "retry-1"
                                                  for s, r in g if s == "events.handled.retry"))
        mine = [r for r in reps if r["id"] == "retry-1"]
        self.assertEqual([(r["attempt"], r["ok"]) for r in mine], [(1, False), (2, False), (3, True)])
        self.assertEqual(mine[0]["kwargs"], {"k": "v"})
        self.assertEqual(self.handler_stats("retry", "redelivered"), 2)
        self.assertEqual(self.handler_stats("retry", "dead_letters"), 0)

    def test_poisoned_event_goes_to_dead_letters(self):
        """An event that always fails is tried NRPC_EVENT_MAX_DELIVER (3)
        times, then stored under deadletter.<service>.<emitter>.<event>
        with the reason, and counted in STATS; later events still flow."""
        self.start_service(self.stack, "dl", HANDLES="emitter.ping")
        self.drain_reports()
        self.emit(id="poison-1", kwargs={"poison": True})
        self.emit(id="fine-1")
        reps = self.reports("dl", lambda g: sum(1 for s, r in g if s == "events.handled.dl"
                                                and r["id"] == "poison-1") >= 3
                            and any(r["id"] == "fine-1" for s, r in g), settle=1.0)
        self.assertEqual([r["attempt"] for r in reps if r["id"] == "poison-1"], [1, 2, 3])
        harness.wait_for(lambda: self.handler_stats("dl", "dead_letters") == 1, WAIT,
                         what="one dead letter in STATS")
        msgs = js_messages(self.nc, "DEADLETTER_dl")
        self.assertEqual(len(msgs), 1, msgs)
        seq, subject, hdrs, data = msgs[0]
        self.assertEqual(subject, "deadletter.dl.emitter.ping")
        self.assertEqual(hdrs["Nrpc-Event-Id"], "poison-1")
        self.assertEqual(hdrs["Nrpc-Event-Subject"], "events.emitter.ping")
        self.assertEqual(hdrs["Nrpc-Deliveries"], "3")
        self.assertIn("poisoned event", hdrs["Nrpc-Error"])
        self.assertEqual(json.loads(data), [[], {"poison": True}])

    def test_hostile_event_bodies(self):
        """Bodies that can never bind are dead letters at once (no retries),
        events nobody handles stay in the stream, and the handler goes on."""
        self.start_service(self.stack, "hostile", HANDLES="emitter.ping")
        self.drain_reports()
        bad = {"bad-json": b"{not json", "bad-type": b'[[], {"n": "seven"}]',
               "bad-args": b'[["extra"], {}]', "bad-shape": b'"just a string"',
               "bad-utf8": b'[[], {"s": "\xff\xfe"}]'}
        for msg_id, data in bad.items():
            ack = js_publish(self.nc, "events.emitter.ping", data, msg_id=msg_id)
            self.assertEqual(ack.get("stream"), "EVENTS_emitter", ack)
        ack = js_publish(self.nc, "events.emitter.nobody_handles_this", b"[[], {}]")
        self.assertEqual(ack.get("stream"), "EVENTS_emitter", ack)
        big = "x" * 500000
        self.emit(id="big-1", kwargs={"pad": big})
        self.emit(id="after-1")
        reps = self.reports("hostile", lambda g: {"big-1", "after-1"} <= {
            r["id"] for s, r in g if s == "events.handled.hostile"})
        self.assertEqual({r["id"] for r in reps}, {"big-1", "after-1"},
                         "only the good events reach the handler")
        harness.wait_for(lambda: self.handler_stats("hostile", "dead_letters") == len(bad), WAIT,
                         what="%d dead letters" % len(bad))
        letters = js_messages(self.nc, "DEADLETTER_hostile")
        self.assertEqual(sorted(h["Nrpc-Event-Id"] for _, _, h, _ in letters), sorted(bad))
        for _, _, h, _ in letters:
            self.assertEqual(h["Nrpc-Deliveries"], "1", h)
            self.assertTrue(h["Nrpc-Error"].startswith("400 "), h)
        # an undeclared event is refused by the emitter itself
        self.assertEqual(self.emit(event="not_declared"), [0, 1])

    def test_duplicate_ids_are_stored_once(self):
        before = js_api(self.nc, "STREAM.INFO.EVENTS_emitter")["state"]["messages"]
        self.assertEqual(self.emit(id="dup-1"), [1, 0])
        self.assertEqual(self.emit(id="dup-1"), [1, 0], "a duplicate is acknowledged")
        after = js_api(self.nc, "STREAM.INFO.EVENTS_emitter")["state"]["messages"]
        self.assertEqual(after - before, 1)

    def test_events_wait_for_a_stopped_handler(self):
        """Events emitted while every replica of a handling service is down
        are handled when it is back: the durable consumer kept them."""
        p = self.start_service(self.stack, "later", HANDLES="emitter.ping")
        p.signalled = True  # stopped by the test
        self.assertEqual(p.stop(), 0)
        self.drain_reports()
        self.emit(id="later", count=5)
        self.start_service(self.stack, "later", HANDLES="emitter.ping")
        reps = self.reports("later", lambda g: {"later-%d" % i for i in range(5)} <= {
            r["id"] for s, r in g if s == "events.handled.later"})
        self.assertEqual(sorted(r["id"] for r in reps), ["later-%d" % i for i in range(5)])

    def test_nats_server_restart(self):
        """The stream, the consumers and the subscriptions survive a
        restart of nats-server with its store."""
        self.start_service(self.stack, "restart", HANDLES="emitter.ping")
        self.nc.close()
        self.nats.stop()
        self.nats.start()
        type(self).nc = harness.NatsClient(self.nats.url)
        type(self).handled = self.nc.subscribe("events.handled.>")
        self.nc.flush()

        def emitted():
            return self.emit(id="after-restart") == [1, 0]

        harness.wait_for(emitted, 20, interval=0.5, what="the emitter to store again")
        reps = self.reports("restart", lambda g: any(
            r["id"] == "after-restart" for s, r in g if s == "events.handled.restart"))
        self.assertEqual([r["id"] for r in reps if r["id"] == "after-restart"], ["after-restart"])

    def test_info_declares_events(self):
        self.start_service(self.stack, "declared", HANDLES="emitter.ping,emitter.big")
        info = self.nc.request("$SRV.INFO.emitter", b"").json()
        emits = json.loads(info["metadata"]["emits"])
        # access: who may subscribe through a gateway with auth on (undeclared:
        # authenticated); no "publish": nobody but the service publishes them
        self.assertEqual(emits, [
            {"name": "ping", "subject": "events.emitter.ping", "description": "",
             "access": "authenticated"},
            {"name": "big", "subject": "events.emitter.big", "description": "",
             "access": "authenticated"}])
        self.assertNotIn("topics", info["metadata"])
        info = self.nc.request("$SRV.INFO.declared", b"").json()
        handles = json.loads(info["metadata"]["handles"])
        self.assertEqual([(h["service"], h["event"], h["consumer"], h["dead_letter"])
                          for h in handles],
                         [("emitter", "ping", "declared__ping", "deadletter.declared.emitter.ping"),
                          ("emitter", "big", "declared__big", "deadletter.declared.emitter.big")])
        consumers = js_api(self.nc, "CONSUMER.NAMES.EVENTS_emitter")["consumers"]
        self.assertIn("declared__ping", consumers)


if __name__ == "__main__":
    import unittest
    unittest.main()
