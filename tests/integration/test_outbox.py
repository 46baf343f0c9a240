"""thing_service's events through the transactional outbox of natsrpc_pg:
each create, rename and delete is an event in the stream EVENTS_thing_service
(its outbox row id in Nats-Msg-Id) that handlers receive; a transaction that
rolled back publishes nothing; and under a create loop, kill -9 of
thing_service and restarts of nats-server and PostgreSQL, every committed
thing has exactly one thing_created event in the stream.
"""

import json
import threading
import time

import harness
from harness import js_messages
from test_things import MIGRATIONS, body, wait_served

STREAM = "EVENTS_thing_service"
UUID_LEN = 36


def created_events(nc):
    """{uuid: [event ids]} of every thing_created in the stream."""
    out = {}
    for _, subject, hdrs, data in js_messages(nc, STREAM, "events.thing_service.thing_created"):
        kw = json.loads(data)[1]
        out.setdefault(kw["uuid"], []).append(hdrs.get("Nats-Msg-Id"))
    return out


class OutboxTest(harness.IntegrationCase):

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.pg = stack.postgres()
            cls.thing = cls.start_thing(stack)
            cls.nc = harness.NatsClient(cls.nats.url)
            wait_served(cls.nc)

        cls.start_stack("outbox", start)

    @classmethod
    def start_thing(cls, stack):
        env = {"DATABASE_URL": cls.pg.url, "THING_MIGRATIONS": MIGRATIONS,
               "NRPC_OUTBOX_LEASE_S": "2", "NRPC_OUTBOX_POLL_MS": "200"}
        return stack.service("thing_service", cls.nats, env=env,
                             ready_subject="thing_service.get_things",
                             replicas_expected=1)

    def call(self, rpc, data, nc=None):
        m = (nc or self.nc).request("thing_service." + rpc, data, timeout=10)
        return m

    def test_changes_are_events(self):
        """create, rename, delete: three events with the thing as kwargs,
        each with its outbox row id, in commit order; a handling service
        gets them."""
        self.stack.service("test_event_service", self.nats, ready_subject="watcher.emit",
                           env={"EVENT_SERVICE": "watcher",
                                "HANDLES": "thing_service.thing_created,"
                                           "thing_service.thing_renamed,"
                                           "thing_service.thing_deleted"})
        handled = self.nc.subscribe("events.handled.watcher")
        live = self.nc.subscribe("events.thing_service.>")  # core NATS sees them too
        self.nc.flush()
        t = self.call("create_thing", body(name="Alice")).json()[0][0]
        self.call("rename_thing", body(uuid=t["uuid"], name="Bob"))
        self.call("delete_thing", body(uuid=t["uuid"]))
        seen = [live.next(5) for _ in range(3)]
        self.assertEqual([m.subject for m in seen],
                         ["events.thing_service.thing_created",
                          "events.thing_service.thing_renamed",
                          "events.thing_service.thing_deleted"])
        self.assertEqual([m.json()[1]["name"] for m in seen], ["Alice", "Bob", "Bob"])
        self.assertEqual(seen[0].json(), [[], t])
        ids = [m.headers["Nats-Msg-Id"] for m in seen]
        rows = self.pg.psql("SELECT id FROM nrpc_outbox ORDER BY seq").split()
        for i in ids:
            self.assertIn(i, rows)
        got = {}
        while len(got) < 3:
            r = handled.next(10).json()[1]
            if r["id"] in ids:
                got[r["id"]] = r
        self.assertEqual(sorted(r["subject"] for r in got.values()),
                         sorted(m.subject for m in seen))
        harness.wait_for(lambda: self.pg.psql(
            "SELECT count(*) FROM nrpc_outbox WHERE sent_at IS NULL") == "0", 10,
            what="every row marked sent")

    def test_rolled_back_publishes_nothing(self):
        """A create retried with the same request_id rolls its statement
        back (thing and event row), and a rename of no thing writes none."""
        first = self.call("create_thing", body(name="Once", request_id="rb-1")).json()[0][0]
        again = self.call("create_thing", body(name="Once", request_id="rb-1")).json()[0][0]
        self.assertEqual(first, again)
        m = self.call("rename_thing", body(uuid="00000000-0000-0000-0000-000000000000", name="x"))
        self.assertEqual(m.headers.get("Nats-Service-Error-Code"), "404")
        harness.wait_for(lambda: first["uuid"] in created_events(self.nc), 10,
                         what="the create's event")
        time.sleep(0.5)
        self.assertEqual(len(created_events(self.nc)[first["uuid"]]), 1)
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM nrpc_outbox WHERE body LIKE '%%%s%%'" % first["uuid"]), "1")

    def test_outbox_under_faults(self):
        """Creates in a loop while thing_service is killed with SIGKILL and
        restarted, nats-server restarts and PostgreSQL restarts: afterwards
        every committed thing has exactly one thing_created event in the
        stream, and no event names a thing that does not exist."""
        stop = threading.Event()
        counts = {"ok": 0, "failed": 0}
        url = self.nats.url

        def loader(k):
            nc, i = None, 0
            while not stop.is_set():
                try:
                    if nc is None or nc.closed:
                        nc = harness.NatsClient(url, timeout=2)
                    m = nc.request("thing_service.create_thing",
                                   body(name="load-%d-%d" % (k, i)), timeout=3)
                    ok = "Nats-Service-Error-Code" not in m.headers and not m.no_responders
                    counts["ok" if ok else "failed"] += 1
                except Exception:  # noqa: BLE001 - NATS restarting under us
                    counts["failed"] += 1
                    if nc is not None:
                        nc.close()
                    nc = None
                    time.sleep(0.1)
                i += 1
            if nc is not None:
                nc.close()

        threads = [threading.Thread(target=loader, args=(k,), daemon=True) for k in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.5)
            # kill -9 thing_service, then start it again
            self.thing.signalled = True
            self.thing.signal(9)
            self.thing.wait(10)
            time.sleep(0.5)
            type(self).thing = self.start_thing(self.stack)
            time.sleep(1.5)
            # nats-server restart (its store stays)
            self.nc.close()
            self.nats.stop()
            time.sleep(0.5)
            self.nats.start()
            type(self).nc = harness.NatsClient(self.nats.url)
            wait_served(self.nc, timeout=30)
            time.sleep(1.5)
            # PostgreSQL restart
            self.pg.stop()
            time.sleep(0.5)
            self.pg.start()
            wait_served(self.nc, timeout=30)
            time.sleep(1.5)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertGreater(counts["ok"], 50, counts)

        harness.wait_for(lambda: self.pg.psql(
            "SELECT count(*) FROM nrpc_outbox WHERE sent_at IS NULL") == "0", 60, interval=0.5,
            what="the relay to publish every pending row")
        things = set(self.pg.psql("SELECT uuid FROM thing").split())
        events = created_events(self.nc)
        missing = things - set(events)
        extra = set(events) - things - self._deleted()
        twice = {u: ids for u, ids in events.items() if len(ids) != 1}
        self.assertEqual(missing, set(), "committed things without a thing_created event")
        self.assertEqual(extra, set(), "events for things that were never committed")
        self.assertEqual(twice, {}, "things with more than one thing_created in the stream")
        rows = set(self.pg.psql("SELECT id FROM nrpc_outbox WHERE event = 'thing_created'").split())
        self.assertEqual({i for ids in events.values() for i in ids}, rows,
                         "each event carries its outbox row id")

    def _deleted(self):
        return set(self.pg.psql(
            "SELECT body::json->1->>'uuid' FROM nrpc_outbox WHERE event = 'thing_deleted'").split())


if __name__ == "__main__":
    import unittest
    unittest.main()
