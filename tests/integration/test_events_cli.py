"""The natsrpc command-line client's event commands, on a nats-server -js:
`natsrpc events tail` prints thing_service's events as they come (and from
the stream with --from-start, --since, --seq) through ordered consumers it
leaves nothing of; `natsrpc events ls` lists the streams, their events, the
handlers' durable consumers and the dead letters; `natsrpc emit` stores an
event once and says "duplicate" for the same --id. Hostile command lines
exit 2 and store nothing; an unreachable NATS exits 3.

The stack: thing_service (events through its outbox) on a private
PostgreSQL, and test_event_service as "cli_emitter" (emits ping) and as
"cli_audit" (handles thing_service.thing_created and cli_emitter.ping).
"""

import json
import re
import signal
import time

import harness
from harness import js_api, js_messages
from test_things import MIGRATIONS, body, wait_served

THINGS = "EVENTS_thing_service"
EMITTER = "EVENTS_cli_emitter"


class EventsCliTest(harness.CliMixin, harness.IntegrationCase):

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.pg = stack.postgres()
            stack.service("thing_service", cls.nats,
                          env={"DATABASE_URL": cls.pg.url, "THING_MIGRATIONS": MIGRATIONS,
                               "NRPC_OUTBOX_POLL_MS": "200"},
                          ready_subject="thing_service.get_things", replicas_expected=1)
            stack.service("test_event_service", cls.nats, ready_subject="cli_emitter.emit",
                          env={"EVENT_SERVICE": "cli_emitter", "EMITS": "ping"})
            stack.service("test_event_service", cls.nats, ready_subject="cli_audit.emit",
                          env={"EVENT_SERVICE": "cli_audit", "QUIET": "1",
                               "HANDLES": "thing_service.thing_created,cli_emitter.ping",
                               "NRPC_EVENT_MAX_DELIVER": "1"})
            cls.nc = harness.NatsClient(cls.nats.url)
            wait_served(cls.nc)

        cls.bin = harness.binary("natsrpc")
        cls.start_stack("events_cli", start)

    def create_thing(self, name):
        m = self.nc.request("thing_service.create_thing", body(name=name), timeout=10)
        self.assertNotIn("Nats-Service-Error-Code", m.headers, repr(m))
        return m.json()[0][0]

    def wait_stored(self, stream, subject, cond, what):
        """The messages of stream on subject once cond(messages) holds."""
        harness.wait_for(lambda: cond(js_messages(self.nc, stream, subject)), 10, what=what)
        return js_messages(self.nc, stream, subject)

    def created(self, uuid):
        """(seq, headers, kwargs) of the thing_created event of uuid."""
        subject = "events.thing_service.thing_created"
        msgs = self.wait_stored(THINGS, subject,
                                lambda ms: any(json.loads(d)[1]["uuid"] == uuid for _, _, _, d in ms),
                                "thing_created of %s stored" % uuid)
        return [(seq, h, json.loads(d)[1]) for seq, _, h, d in msgs
                if json.loads(d)[1]["uuid"] == uuid][0]

    def ephemeral_consumers(self, stream):
        names = js_api(self.nc, "CONSUMER.NAMES." + stream).get("consumers") or []
        return [n for n in names if "__" not in n]

    def spawn_tail(self, *args):
        p = self.stack.spawn("natsrpc-tail", [self.bin, "events", "tail"] + list(args),
                             env={"NATS_URL": self.nats.url})
        p.signalled = True  # it exits by itself or by our signal; checked here
        harness.wait_for(lambda: "natsrpc: tailing" in p.log_text() or not p.alive(), 10,
                         what="natsrpc events tail started")
        return p

    # -- events tail

    def test_tail_prints_a_created_thing(self):
        p = self.spawn_tail("thing_service.>", "--count", "1")
        t = self.create_thing("tailed")
        self.assertEqual(p.wait(15), 0, p.log_tail())
        seq, hdrs, kwargs = self.created(t["uuid"])
        line = [l for l in p.log_text().splitlines() if "thing_created" in l]
        self.assertEqual(len(line), 1, p.log_tail())
        # "#<seq> <time> <topic> <event id> [args, kwargs]"
        m = re.match(r"#(\d+) (\S+Z) thing_service\.thing_created (\S+) (.*)$", line[0])
        self.assertTrue(m, line[0])
        self.assertEqual(int(m.group(1)), seq)
        self.assertEqual(m.group(3), hdrs["Nats-Msg-Id"])
        self.assertEqual(json.loads(m.group(4)), [[], kwargs])
        self.assertEqual(self.ephemeral_consumers(THINGS), [])

    def test_tail_reads_the_stream(self):
        a = self.create_thing("first")
        b = self.create_thing("second")
        seq_a, hdrs_a, _ = self.created(a["uuid"])
        seq_b, _, _ = self.created(b["uuid"])
        first = js_api(self.nc, "STREAM.INFO." + THINGS)["state"]["first_seq"]
        r = self.run_cli("events", "tail", "thing_service.thing_created", "--from-start",
                         "--count", "1", "--json")
        self.assertExit(r, 0)
        ev = json.loads(r.out)
        self.assertEqual((ev["stream"], ev["topic"]), (THINGS, "thing_service.thing_created"))
        self.assertEqual(ev["seq"], first)
        self.assertEqual(ev["body"][0], [])
        r = self.run_cli("events", "tail", "thing_service.>", "--seq", str(seq_a), "--count", "2",
                         "--json")
        self.assertExit(r, 0)
        evs = [json.loads(l) for l in r.out.splitlines()]
        self.assertEqual(evs[0]["seq"], seq_a)
        self.assertEqual(evs[0]["id"], hdrs_a["Nats-Msg-Id"])
        self.assertEqual(evs[0]["body"][1]["uuid"], a["uuid"])
        self.assertGreater(evs[1]["seq"], seq_a)
        # --since: what was stored within the last minute, --raw: bodies only
        r = self.run_cli("events", "tail", "*.thing_created", "--since", "1m", "--count", "1",
                         "--raw")
        self.assertExit(r, 0)
        self.assertEqual(json.loads(r.out)[0], [])
        r = self.run_cli("events", "tail", ">", "--seq", "1", "--count", "1")
        self.assertExit(r, 2)  # a sequence is one stream's
        self.assertIn("--seq", r.err)
        self.assertGreater(seq_b, seq_a)
        self.assertEqual(self.ephemeral_consumers(THINGS), [])

    def test_tail_until_interrupted(self):
        p = self.spawn_tail("cli_emitter.ping")
        self.assertExit(self.run_cli("emit", "cli_emitter.ping", "--kw", "n=7"), 0)
        harness.wait_for(lambda: '{"n": 7}' in p.log_text(), 10, what="the event printed")
        p.signal(signal.SIGINT)
        self.assertEqual(p.wait(10), 0, p.log_tail())
        self.assertEqual(self.ephemeral_consumers(EMITTER), [])

    def test_tail_without_a_stream_reads_core_nats(self):
        p = self.spawn_tail("nobody_emits.>", "--count", "1")
        self.assertIn("no stream stores events.nobody_emits.>", p.log_text())
        self.nats.wait_subscribers("events.nobody_emits.>", 1)
        self.nc.publish("events.nobody_emits.x", '[["\x1b[31mred"], {}]')
        self.assertEqual(p.wait(10), 0, p.log_tail())
        line = [l for l in p.log_text().splitlines() if "nobody_emits.x" in l][0]
        self.assertTrue(line.startswith("#- "), line)
        self.assertNotIn("\x1b", line)  # control bytes from the wire are not printed
        r = self.run_cli("events", "tail", "nobody_emits.>", "--from-start")
        self.assertExit(r, 1)
        self.assertIn("no service emits", r.err)

    # -- events ls

    def test_ls(self):
        self.created(self.create_thing("listed")["uuid"])
        # a positional argument does not bind to cli_audit's handler: a dead letter
        self.assertExit(self.run_cli("emit", "cli_emitter.ping", "poisoned"), 0)
        harness.wait_for(lambda: js_api(self.nc, "STREAM.INFO.DEADLETTER_cli_audit")
                         .get("state", {}).get("messages", 0) >= 1, 10, what="a dead letter")
        r = self.run_cli("events", "ls", "--json")
        self.assertExit(r, 0)
        out = json.loads(r.out)
        streams = {s["stream"]: s for s in out["streams"]}
        things = streams[THINGS]
        info = js_api(self.nc, "STREAM.INFO." + THINGS)["state"]
        self.assertEqual(things["service"], "thing_service")
        self.assertGreaterEqual(things["messages"], 1)
        self.assertEqual(things["first_seq"], info["first_seq"])
        self.assertRegex(things["last_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertIn("events.thing_service.thing_created", [s["subject"] for s in things["subjects"]])
        c = [c for c in things["consumers"] if c["handler"] == "cli_audit"]
        self.assertEqual(len(c), 1, things["consumers"])
        self.assertEqual((c[0]["consumer"], c[0]["event"], c[0]["filter_subject"]),
                         ("cli_audit__thing_created", "thing_created",
                          "events.thing_service.thing_created"))
        for key in ("pending", "ack_pending", "redelivered", "ack_floor", "delivered"):
            self.assertIsInstance(c[0][key], int, key)
        self.assertTrue(c[0]["bound"])
        self.assertIn(EMITTER, streams)
        dead = {s["stream"]: s for s in out["dead_letters"]}
        self.assertGreaterEqual(dead["DEADLETTER_cli_audit"]["messages"], 1)
        self.assertEqual(dead["DEADLETTER_cli_audit"]["subjects"][0]["subject"],
                         "deadletter.cli_audit.cli_emitter.ping")
        r = self.run_cli("events", "ls")
        self.assertExit(r, 0)
        self.assertRegex(r.out, r"(?m)^EVENTS_thing_service  \d+ messages, \d+ bytes, #\d+ ")
        self.assertRegex(r.out, r"(?m)^  thing_service\.thing_created +\d+$")
        self.assertRegex(r.out, r"(?m)^  cli_audit +cli_audit__thing_created +\d+ +\d+ +\d+ +\d+ +yes$")
        self.assertIn("DEADLETTER_cli_audit", r.out)

    # -- emit

    def test_emit_once_then_duplicate(self):
        eid = "cli-" + harness.rand_token(8)
        r = self.run_cli("emit", "cli_emitter.ping", "--kw", "n=1", "--id", eid, "--kw", "who=me",
                         "--json")
        self.assertExit(r, 0)
        first = json.loads(r.out)
        self.assertEqual((first["stream"], first["subject"], first["id"], first["duplicate"]),
                         (EMITTER, "events.cli_emitter.ping", eid, False))
        r = self.run_cli("emit", "cli_emitter.ping", "--kw", "n=1", "--id", eid)
        self.assertExit(r, 0)
        self.assertEqual(r.out, "duplicate %d\n" % first["seq"])
        mine = [(seq, h, json.loads(d)) for seq, _, h, d in js_messages(self.nc, EMITTER)
                if h.get("Nats-Msg-Id") == eid]
        self.assertEqual(len(mine), 1, mine)
        self.assertEqual(mine[0][0], first["seq"])
        self.assertEqual(mine[0][2], [[], {"n": 1, "who": "me"}])
        # without --id, a new id each time; the body as call builds it
        r1 = self.run_cli("emit", "cli_emitter.ping", '{"n": 2}')
        r2 = self.run_cli("emit", "cli_emitter.ping", "--n", "3")
        self.assertExit(r1, 0)
        self.assertExit(r2, 0)
        self.assertGreater(int(r2.out), int(r1.out))
        msgs = {seq: (h, json.loads(d)) for seq, _, h, d in js_messages(self.nc, EMITTER)}
        self.assertEqual(msgs[int(r1.out)][1], [[], {"n": 2}])
        self.assertEqual(msgs[int(r2.out)][1], [[], {"n": 3}])
        self.assertRegex(msgs[int(r1.out)][0]["Nats-Msg-Id"], r"^[0-9a-f]{32}$")
        self.assertNotEqual(msgs[int(r1.out)][0]["Nats-Msg-Id"], msgs[int(r2.out)][0]["Nats-Msg-Id"])

    def test_emit_without_a_stream_exits_1(self):
        r = self.run_cli("emit", "nobody_emits.thing", "--kw", "n=1")
        self.assertExit(r, 1)
        self.assertIn("no service emits", r.err)

    # -- hostile command lines, NATS away

    def test_usage_errors_exit_2_and_store_nothing(self):
        before = js_api(self.nc, "STREAM.INFO." + EMITTER)["state"]["last_seq"]
        for args in (["events"], ["events", "frob"], ["events", "ls", "x"], ["events", "tail"],
                     ["events", "tail", "a", "b"], ["events", "tail", "$JS.>"],
                     ["events", "tail", "thing_service.$x"], ["events", "tail", "thing*.>"],
                     ["events", "tail", "thing_service.*x"], ["events", "tail", "a.>.b"],
                     ["events", "tail", "a..b"], ["events", "tail", "a b"],
                     ["events", "tail", "a." + "x" * 300],
                     ["events", "tail", "a.>", "--bogus"], ["events", "tail", "a.>", "--count"],
                     ["events", "tail", "a.>", "--count", "0"], ["events", "tail", "a.>", "--seq", "-1"],
                     ["events", "tail", "a.>", "--since", "soon"], ["events", "tail", "a.>", "--since"],
                     ["events", "tail", "a.>", "--kw", "a=1"], ["events", "ls", "--raw"],
                     ["--id", "x", "events", "ls"], ["emit"], ["emit", "cli_emitter"],
                     ["emit", "cli_emitter.ping.x"], ["emit", "cli_emitter.>"], ["emit", "$JS.API"],
                     ["emit", "cli_emitter." + "p" * 300],
                     ["emit", "cli_emitter.ping", "[1"], ["emit", "cli_emitter.ping", '{"n": '],
                     ["emit", "cli_emitter.ping", "x", "[1,"], ["emit", "cli_emitter.ping", "--n", "{"],
                     ["emit", "cli_emitter.ping", "--kw", "n={x"], ["emit", "cli_emitter.ping", "[1, 2]"],
                     ["emit", "cli_emitter.ping", '[[], []]'], ["emit", "cli_emitter.ping", "--kw"],
                     ["emit", "cli_emitter.ping", "--kw", "novalue"], ["emit", "cli_emitter.ping", "--kw", "=1"],
                     ["emit", "cli_emitter.ping", "--kw", "n=1", "--kw", "n=2"],
                     ["emit", "cli_emitter.ping", "--id"], ["emit", "cli_emitter.ping", "--id", "a b"],
                     ["emit", "cli_emitter.ping", "--id", "x" * 65], ["emit", "cli_emitter.ping", "--json=1"]):
            with self.subTest(args=args):
                self.assertExit(self.run_cli(*args), 2)
        self.assertEqual(js_api(self.nc, "STREAM.INFO." + EMITTER)["state"]["last_seq"], before)

    def test_help(self):
        for args in (["events", "--help"], ["events", "ls", "--help"], ["events", "tail", "-h"],
                     ["emit", "--help"], ["--help"]):
            with self.subTest(args=args):
                r = self.run_cli(*args, env={"NATS_URL": "nats://127.0.0.1:1"})
                self.assertExit(r, 0)
                self.assertIn("usage:", r.out)
        self.assertIn("--from-start", self.run_cli("events", "tail", "--help").out)
        self.assertIn("natsrpc emit", self.run_cli("--help").out)

    def test_no_nats_exits_3(self):
        server = "nats://127.0.0.1:%d" % harness.free_port()
        for args in (["events", "ls"], ["events", "tail", "thing_service.>"],
                     ["emit", "cli_emitter.ping", "--kw", "n=1"]):
            with self.subTest(args=args):
                t0 = time.monotonic()
                r = self.run_cli(*args, "--server", server)
                self.assertExit(r, 3)
                self.assertIn("cannot connect", r.err)
                self.assertLess(time.monotonic() - t0, 4.5)


if __name__ == "__main__":
    import unittest
    unittest.main()
