"""thing_service against a private PostgreSQL: the five rpcs and their
errors (through the gateway and straight over NATS), pagination, idempotent
creates (also concurrent ones), restarts of every piece, migrations with two
replicas starting together, start-up without a database, and an outage under
load in which no acknowledged create may be lost.

Three classes, each with its own nats-server, PostgreSQL and processes:
  ThingApiTest        the rpcs, errors, pagination, idempotency
  ThingLifecycleTest  restarts, two replicas migrating, no database at start
  ThingOutageTest     Postgres stopped and started under continuous creates
"""

import glob
import json
import os
import re
import threading
import time

import harness
from harness import post
from test_websocket import WsClient

MIGRATIONS = os.environ.get("THING_MIGRATIONS") or os.path.normpath(
    os.path.join(harness.HERE, "..", "..", "services", "thing", "migrations"))

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TS_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
THING_TEXT_RE = r'\{"uuid": "(%s)", "name": "%%s", "is_created_at": "%s"\}' % (UUID_RE, TS_RE)
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

READY_TIMEOUT = 15.0  # thing_service answers 200 after start-up or a database restart


def body(*args, **kwargs):
    return json.dumps([list(args), kwargs])


def nats_call(nc, rpc, data, timeout=5.0):
    return nc.request("thing_service." + rpc, data, timeout=timeout)


def wait_served(nc, timeout=READY_TIMEOUT, what="thing_service to answer get_things 200"):
    """Waits until get_things answers 200 over NATS (migrations in, pool up);
    returns the seconds it took."""
    t0 = time.monotonic()

    def ok():
        m = nats_call(nc, "get_things", body(limit=1), timeout=2)
        return "Nats-Service-Error-Code" not in m.headers and not m.no_responders

    harness.wait_for(ok, timeout, interval=0.1, what=what)
    return time.monotonic() - t0


def start_thing_service(stack, nats, pg_url, env=None):
    e = {"DATABASE_URL": pg_url, "THING_MIGRATIONS": MIGRATIONS}
    e.update(env or {})
    return stack.service("thing_service", nats, env=e, ready_subject="thing_service.get_things")


def stop_by_test(proc, case):
    """Stops one of our processes on purpose; it must exit 0."""
    proc.signalled = True
    rc = proc.stop()
    case.assertEqual(rc, 0, "%s: exit status after SIGTERM\n%s" % (proc.name, proc.log_tail()))


class ThingCase(harness.IntegrationCase):
    """Shared helpers: calls through the gateway, with checks."""

    port = None

    @classmethod
    def start_things(cls, prefix, gateway_env=None):
        """nats, a private Postgres, thing_service and the gateway, served."""
        def start(stack):
            cls.nats = stack.nats()
            cls.pg = stack.postgres()
            cls.svc = start_thing_service(stack, cls.nats, cls.pg.url)
            cls.gw, cls.port = stack.gateway(cls.nats, env=gateway_env)
            cls.nc = harness.NatsClient(cls.nats.url)
            wait_served(cls.nc)
        cls.start_stack(prefix, start)

    def call(self, rpc, data, **kw):
        return post(self.port, "thing_service." + rpc, data, **kw)

    def ok(self, rpc, data):
        r = self.call(rpc, data)
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.content_type, "application/json", r.describe())
        v = r.json()
        self.assertIsInstance(v, list, r.describe())
        self.assertEqual(len(v), 2, r.describe())
        return v

    def create(self, name, request_id=None):
        kw = {"name": name}
        if request_id is not None:
            kw["request_id"] = request_id
        v = self.ok("create_thing", body(**kw))
        self.assertEqual(v[1], {}, v)
        self.assertEqual(len(v[0]), 1, v)
        self.assertThing(v[0][0])
        return v[0][0]

    def page(self, limit=None, after=None):
        kw = {}
        if limit is not None:
            kw["limit"] = limit
        if after is not None:
            kw["after"] = after
        v = self.ok("get_things", body(**kw))
        self.assertEqual(set(v[1].keys()), {"next"}, v[1])
        for t in v[0]:
            self.assertThing(t)
        return v[0], v[1]["next"]

    def all_things(self, limit=1000):
        out, after = [], None
        while True:
            things, after = self.page(limit=limit, after=after)
            out.extend(things)
            if after is None:
                return out

    def assertThing(self, t):
        self.assertIsInstance(t, dict, t)
        self.assertEqual(list(t.keys()), ["uuid", "name", "is_created_at"], t)
        self.assertRegex(t["uuid"], "^%s$" % UUID_RE)
        self.assertRegex(t["is_created_at"], "^%s$" % TS_RE)


# ---------------------------------------------------------------------------


class ThingApiTest(ThingCase):
    @classmethod
    def setUpClass(cls):
        cls.start_things("things")

    def empty_tables(self):
        self.pg.psql("TRUNCATE thing, thing_request")

    def count(self, where="TRUE", table="thing"):
        return int(self.pg.psql("SELECT count(*) FROM %s WHERE %s" % (table, where)))

    # -- the README's curl lines

    def test_curl_lines(self):
        self.empty_tables()
        r = self.call("create_thing", '[[], {"name": "Alice"}]')
        self.assertEqual(r.status, 200, r.describe())
        m = re.fullmatch(r"\[\[%s\], \{\}\]" % (THING_TEXT_RE % "Alice"), r.text)
        self.assertIsNotNone(m, "create_thing reply text: %s" % r.describe())
        alice = r.json()[0][0]
        r = self.call("get_things", "[]")
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.json(), [[alice], {"next": None}], r.describe())
        self.assertRegex(r.text, r'^\[\[%s\], \{"next": null\}\]$' % (THING_TEXT_RE % "Alice"))
        # an empty body and '[]' are the same call
        self.assertEqual(self.call("get_things", "").json(), [[alice], {"next": None}])

    def test_nats_direct(self):
        self.empty_tables()
        m = nats_call(self.nc, "create_thing", '[[], {"name": "Alice"}]')
        self.assertNotIn("Nats-Service-Error-Code", m.headers, m)
        self.assertRegex(m.data.decode(), r"^\[\[%s\], \{\}\]$" % (THING_TEXT_RE % "Alice"))
        alice = m.json()[0][0]
        self.assertNatsOk(nats_call(self.nc, "get_things", "[]"),
                          json.dumps([[alice], {"next": None}]), "get_things")
        self.assertNatsOk(nats_call(self.nc, "get_thing", body(alice["uuid"])),
                          json.dumps([[alice], {}]), "get_thing")
        renamed = dict(alice, name="Alicia")
        self.assertNatsOk(nats_call(self.nc, "rename_thing", body(alice["uuid"], "Alicia")),
                          json.dumps([[renamed], {}]), "rename_thing")
        self.assertNatsOk(nats_call(self.nc, "delete_thing", body(uuid=alice["uuid"])),
                          json.dumps([[renamed], {}]), "delete_thing")
        # errors over NATS carry the service-API headers
        self.assertNatsError(nats_call(self.nc, "get_thing", body(alice["uuid"])), 404, "not_found",
                             contains=alice["uuid"], what="get_thing deleted")
        self.assertNatsError(nats_call(self.nc, "get_thing", body("nope")), 400, contains="'uuid'",
                             what="get_thing malformed")
        self.assertNatsError(nats_call(self.nc, "create_thing", body(name=" ")), 400,
                             contains="'name'", what="create_thing blank")
        self.assertNatsError(nats_call(self.nc, "get_things", body(limit=0)), 400,
                             contains="'limit'", what="get_things limit 0")

    # -- the five rpcs

    def test_get_rename_delete(self):
        t = self.create("Bob")
        self.assertEqual(self.ok("get_thing", body(t["uuid"])), [[t], {}])
        self.assertEqual(self.ok("get_thing", body(uuid=t["uuid"].upper())), [[t], {}],
                         "an upper-case uuid is the same uuid")
        r = self.ok("rename_thing", body(t["uuid"], "  Robert  "))
        self.assertEqual(r, [[dict(t, name="Robert")], {}], "rename keeps uuid and is_created_at")
        self.assertEqual(self.ok("get_thing", body(t["uuid"])), [[dict(t, name="Robert")], {}])
        self.assertEqual(self.ok("delete_thing", body(t["uuid"])), [[dict(t, name="Robert")], {}])
        self.assertEqual(self.count("uuid = '%s'" % t["uuid"]), 0)
        for rpc, data in (("get_thing", body(t["uuid"])), ("delete_thing", body(t["uuid"])),
                          ("rename_thing", body(t["uuid"], "x"))):
            with self.subTest(rpc=rpc):
                self.assertHttpError(self.call(rpc, data), 404, "not_found", contains=t["uuid"])

    def test_services_lists_declared_events(self):
        r = harness.http_call(self.port, "GET", "/services?refresh=1")
        self.assertEqual(r.status, 200, r.describe())
        svc = {s["name"]: s for s in r.json()["services"]}["thing_service"]
        self.assertEqual([(e["name"], e["subject"]) for e in svc["emits"]],
                         [("thing_created", "events.thing_service.thing_created"),
                          ("thing_renamed", "events.thing_service.thing_renamed"),
                          ("thing_deleted", "events.thing_service.thing_deleted")])
        self.assertEqual(svc["handles"], [])

    def test_openapi_examples_are_valid_calls(self):
        """The example bodies of /openapi.json (what /docs' "Try it out"
        sends) bind: none gets 400."""
        uuid = "6f1c2a4e-8b1d-4c55-9e0a-3d2b7f9c1a20"
        examples = {p: e for p, e in harness.openapi_examples(self.port).items()
                    if p.startswith("/thing_service.")}
        self.assertEqual(examples, {
            "/thing_service.create_thing": [[], {"name": "Alice", "request_id": None}],
            "/thing_service.get_things": [[], {"limit": 100, "after": None}],
            "/thing_service.get_thing": [[], {"uuid": uuid}],
            "/thing_service.rename_thing": [[], {"uuid": uuid, "name": "Bob"}],
            "/thing_service.delete_thing": [[], {"uuid": uuid}],
        })
        self.empty_tables()
        send = {p[len("/thing_service."):]: json.dumps(e) for p, e in examples.items()}
        v = self.ok("create_thing", send["create_thing"])
        alice = v[0][0]
        self.assertEqual(v, [[dict(alice, name="Alice")], {}])
        self.assertEqual(self.ok("get_things", send["get_things"]), [[alice], {"next": None}])
        for rpc in ("get_thing", "rename_thing", "delete_thing"):
            with self.subTest(rpc=rpc):
                r = self.call(rpc, send[rpc])
                self.assertEqual((r.status, r.json()), (404, {"error": {
                    "code": 404, "type": "not_found", "message": "no thing with uuid " + uuid}}),
                    r.describe())

    def test_wamp_publish_deletes_nothing(self):
        """A WAMP topic is the NATS subject events.<topic>: a PUBLISH on
        thing_service.delete_thing runs no handler."""
        t = self.create("Kept")
        c = WsClient(self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.hello()[0], 2)
        c.send_json([16, 1, {"acknowledge": True}, "thing_service.delete_thing", [t["uuid"]]])
        self.assertEqual(c.recv_json()[:2], [17, 1])
        c.send_json([16, 2, {"acknowledge": True}, "thing_service.delete_thing", [],
                     {"uuid": t["uuid"]}])
        self.assertEqual(c.recv_json()[:2], [17, 2])
        # The call travels on the gateway's connection after the publishes,
        # so it is answered after they were delivered (had anyone listened).
        c.send_json([48, 3, {}, "thing_service.get_thing", [t["uuid"]]])
        self.assertEqual(c.recv_json(), [50, 3, {}, [t]])
        self.assertEqual(self.count("uuid = '%s'" % t["uuid"]), 1)

    def test_unknown_uuid_is_404(self):
        for rpc, data in (("get_thing", body(ZERO_UUID)), ("delete_thing", body(ZERO_UUID)),
                          ("rename_thing", body(ZERO_UUID, "x"))):
            with self.subTest(rpc=rpc):
                self.assertHttpError(self.call(rpc, data), 404, "not_found", contains=ZERO_UUID)

    def test_malformed_uuid_is_400(self):
        bad = ["", "nope", ZERO_UUID[:-1], ZERO_UUID + "0", ZERO_UUID.replace("-", ""),
               "{%s}" % ZERO_UUID[:-2], "g0000000-0000-0000-0000-000000000000",
               "00000000-0000-0000-0000-00000000000\u00e9", "' OR 1=1 --"]
        for u in bad:
            for rpc, data in (("get_thing", body(u)), ("delete_thing", body(u)),
                              ("rename_thing", body(u, "x"))):
                with self.subTest(rpc=rpc, uuid=u):
                    self.assertHttpError(self.call(rpc, data), 400, "invalid_argument", contains="'uuid'")
        # a wrong type is refused by the binder, naming the parameter
        self.assertHttpError(self.call("get_thing", body(5)), 400, contains="'uuid'")
        self.assertHttpError(self.call("get_thing", "[]"), 400, contains="'uuid'")

    def test_name_validation(self):
        t = self.create("Carol")
        bad = {"empty": "", "spaces": "   ", "whitespace": " \t\r\n\f\v ", "201 chars": "x" * 201,
               "201 multibyte": "\u00e9" * 201, "201 after trim": "  " + "y" * 201 + "  "}
        before = self.count()
        for what, name in bad.items():
            with self.subTest(rpc="create_thing", name=what):
                self.assertHttpError(self.call("create_thing", body(name=name)), 400,
                                     "invalid_argument", contains="'name'")
            with self.subTest(rpc="rename_thing", name=what):
                self.assertHttpError(self.call("rename_thing", body(t["uuid"], name)), 400,
                                     "invalid_argument", contains="'name'")
        self.assertEqual(self.count(), before, "a refused create inserted a row")
        self.assertEqual(self.ok("get_thing", body(t["uuid"]))[0][0]["name"], "Carol",
                         "a refused rename changed the name")
        self.assertHttpError(self.call("create_thing", body(name=5)), 400, contains="'name'")
        self.assertHttpError(self.call("create_thing", "[]"), 400, contains="'name'")

        good = {"1 char": ("a", "a"), "200 chars": ("z" * 200, "z" * 200),
                "200 two-byte": ("\u00e9" * 200, "\u00e9" * 200),
                "200 three-byte": ("\u6f22" * 200, "\u6f22" * 200),
                "200 four-byte": ("\U0001F600" * 200, "\U0001F600" * 200),
                "trimmed": ("  \t Bob Ross \n ", "Bob Ross"),
                "200 after trim": ("   " + "w" * 200 + "\n", "w" * 200),
                "inner spaces kept": ("a  b", "a  b"),
                "quotes": ('say "hi" \\ \' ;', 'say "hi" \\ \' ;')}
        for what, (name, stored) in good.items():
            with self.subTest(name=what):
                c = self.create(name)
                self.assertEqual(c["name"], stored)
                self.assertEqual(self.ok("get_thing", body(c["uuid"]))[0][0]["name"], stored)
                self.assertEqual(self.pg.psql("SELECT name FROM thing WHERE uuid = '%s'" % c["uuid"]),
                                 stored)
                r = self.ok("rename_thing", body(t["uuid"], name))
                self.assertEqual(r[0][0]["name"], stored)

    def test_limit_out_of_range_is_400(self):
        for limit in (0, -1, 1001, 10 ** 12):
            with self.subTest(limit=limit):
                self.assertHttpError(self.call("get_things", body(limit=limit)), 400,
                                     "invalid_argument", contains="'limit'")
        self.assertHttpError(self.call("get_things", body(limit="10")), 400, contains="'limit'")
        for limit in (1, 1000):
            with self.subTest(limit=limit):
                things, _ = self.page(limit=limit)
                self.assertLessEqual(len(things), limit)

    def test_bad_cursor_is_400(self):
        for after in ("", "x", "nonsense", ",", "2024-01-01T00:00:00.000000Z",
                      "2024-01-01T00:00:00.000000Z,", "2024-01-01T00:00:00.000000Z,nope",
                      "garbage,%s" % ZERO_UUID, ",%s" % ZERO_UUID, "2024-13-45T99:00:00Z,%s" % ZERO_UUID):
            with self.subTest(after=after):
                self.assertHttpError(self.call("get_things", body(after=after)), 400, "invalid_argument")
        self.assertHttpError(self.call("get_things", body(after=5)), 400, contains="'after'")

    def test_pagination(self):
        self.empty_tables()
        made = [self.create("page thing %02d" % i) for i in range(25)]
        uuids = [t["uuid"] for t in made]
        self.assertEqual(len(set(uuids)), 25)
        self.assertEqual(self.count(), 25)

        pages, after = [], None
        while True:
            things, after = self.page(limit=10, after=after)
            pages.append(things)
            if after is None:
                break
            self.assertIsInstance(after, str)
            self.assertLess(len(pages), 10, "pagination does not end")
        self.assertEqual([len(p) for p in pages], [10, 10, 5])
        got = [t for p in pages for t in p]
        self.assertEqual([t["uuid"] for t in got], uuids, "all things, oldest first, no duplicates")
        self.assertEqual(got, made, "pages hold the things as created")
        stamps = [t["is_created_at"] for t in got]
        self.assertEqual(stamps, sorted(stamps))

        # a page that ends exactly at the last thing says there is no next page
        things, after = self.page(limit=25)
        self.assertEqual((len(things), after), (25, None))
        sizes = []
        after = None
        while True:
            things, after = self.page(limit=5, after=after)
            sizes.append(len(things))
            if after is None:
                break
        self.assertEqual(sizes, [5] * 5)
        # default limit (100) and an old cursor still works after a delete
        things, after = self.page()
        self.assertEqual((len(things), after), (25, None))
        first, cursor = self.page(limit=10)
        self.ok("delete_thing", body(uuids[9]))  # the thing the cursor points at
        rest, _ = self.page(limit=100, after=cursor)
        self.assertEqual([t["uuid"] for t in rest], uuids[10:])

    # -- idempotent creates

    def test_idempotent_create(self):
        rid = "rid-" + harness.rand_token(16)
        total = self.count()
        first = self.ok("create_thing", body(name="Dora", request_id=rid))
        again = self.ok("create_thing", body(name="Dora", request_id=rid))
        self.assertEqual(again, first, "a retry returns the first result")
        uuid = first[0][0]["uuid"]
        self.assertEqual(self.count("uuid = '%s'" % uuid), 1)
        self.assertEqual(self.count(), total + 1, "the retry inserted another row")
        self.assertEqual(self.count("request_id = '%s'" % rid, "thing_request"), 1)
        # the same request_id with another name is still the first call
        self.assertEqual(self.ok("create_thing", body(name="Other", request_id=rid)), first)
        # a retry after a rename (and after a delete) returns the first result
        self.ok("rename_thing", body(uuid, "Dorothy"))
        self.assertEqual(self.ok("create_thing", body(name="Dora", request_id=rid)), first)
        self.ok("delete_thing", body(uuid))
        self.assertEqual(self.ok("create_thing", body(name="Dora", request_id=rid)), first)
        self.assertEqual(self.count(), total, "a retry after the delete inserted a row")
        # another request_id is another thing; no request_id never deduplicates
        other = self.ok("create_thing", body(name="Dora", request_id=rid + "-2"))
        self.assertNotEqual(other[0][0]["uuid"], uuid)
        a, b = self.create("Dora"), self.create("Dora")
        self.assertNotEqual(a["uuid"], b["uuid"])
        for bad in ("", "r" * 201):
            with self.subTest(request_id=len(bad)):
                self.assertHttpError(self.call("create_thing", body(name="x", request_id=bad)), 400,
                                     contains="'request_id'")

    def test_idempotent_create_concurrent(self):
        for round_ in range(3):
            rid = "crid-%d-%s" % (round_, harness.rand_token(16))
            total = self.count()
            results = [None] * 20
            barrier = threading.Barrier(20)

            def worker(i):
                barrier.wait(10)
                try:
                    results[i] = self.call("create_thing", body(name="Eve %d" % i, request_id=rid),
                                           timeout=20)
                except Exception as e:  # noqa: BLE001 - reported below
                    results[i] = e

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            for r in results:
                self.assertIsInstance(r, harness.Response, "a create got no answer: %r" % (r,))
                self.assertEqual(r.status, 200, r.describe())
            bodies = {r.text for r in results}
            self.assertEqual(len(bodies), 1, "20 creates with one request_id, different answers: %s"
                             % sorted(bodies))
            uuid = results[0].json()[0][0]["uuid"]
            self.assertEqual(self.count(), total + 1, "20 creates with one request_id: rows")
            self.assertEqual(self.count("uuid = '%s'" % uuid), 1)
            self.assertEqual(self.count("request_id = '%s'" % rid, "thing_request"), 1)


# ---------------------------------------------------------------------------


class ThingLifecycleTest(ThingCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.pg = stack.postgres()
            cls.svc = start_thing_service(cls.stack, cls.nats, cls.pg.url)
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
            wait_served(cls.nc)
        cls.start_stack("things-life", start)

    @classmethod
    def tearDownClass(cls):
        for nc in (getattr(cls, "nc", None), getattr(cls, "nc2", None)):
            if nc:
                nc.close()
        super().tearDownClass()

    def assertStillThere(self, things, what):
        for t in things:
            r = self.call("get_thing", body(t["uuid"]))
            self.assertEqual(r.status, 200, "%s: %s" % (what, r.describe()))
            self.assertEqual(r.json(), [[t], {}], what)

    def test_things_survive_restarts(self):
        cls = type(self)
        things = [self.create("survivor %d" % i) for i in range(3)]

        # thing_service
        stop_by_test(cls.svc, self)
        self.assertHttpError(self.call("get_thing", body(things[0]["uuid"])), 404, "not_found")
        cls.svc = start_thing_service(cls.stack, cls.nats, cls.pg.url)
        wait_served(cls.nc)
        self.assertStillThere(things, "after restarting thing_service")

        # the gateway, on the same port
        stop_by_test(cls.gw, self)
        cls.gw, _ = cls.stack.gateway(cls.nats, port=cls.port)
        self.assertStillThere(things, "after restarting the gateway")

        # PostgreSQL: fast shutdown, start on the same port and data
        old_pid = cls.pg.pid
        cls.pg.stop()
        r = self.call("get_things", "[]")
        self.assertHttpError(r, 503, "unavailable")
        cls.pg.start()
        self.assertNotEqual(cls.pg.pid, old_pid)
        took = wait_served(cls.nc, what="thing_service back after a Postgres restart")
        self.assertLess(took, 10.0)
        self.assertStillThere(things, "after restarting Postgres")
        things.append(self.create("after the restarts"))
        self.assertStillThere(things, "a new thing")
        self.assertIn("database lost", cls.svc.log_text())

    def test_two_replicas_migrate_once(self):
        """Two replicas start together on a fresh database: both serve, each
        migration is applied once in total and recorded once."""
        cls = type(self)
        nats2 = cls.stack.nats(name="nats-replicas")  # keeps them out of the main queue group
        db = "fresh_" + harness.rand_token(8).lower()
        url = cls.pg.create_database(db)
        env = {"NATS_URL": nats2.url, "DATABASE_URL": url, "THING_MIGRATIONS": MIGRATIONS}
        path = harness.binary("thing_service")
        reps = [cls.stack.spawn("thing_service-replica", [path], env=env) for _ in range(2)]
        try:
            def both_served():
                for p in reps:
                    if not p.alive():
                        raise AssertionError("%s exited with %s\n%s" % (p.name, p.returncode, p.log_tail()))
                return all("database connected: calls are served" in p.log_text() for p in reps)

            harness.wait_for(both_served, READY_TIMEOUT, what="both replicas connected to the database")
            nats2.wait_subscribers("thing_service.get_things", 2)
            with harness.NatsClient(nats2.url) as nc:
                m = nats_call(nc, "create_thing", body(name="replicated"))
                self.assertNotIn("Nats-Service-Error-Code", m.headers, m)

            files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(MIGRATIONS, "*.sql")))
            self.assertTrue(files, "no migrations in %s" % MIGRATIONS)
            rows = self.pg.psql("SELECT version, name FROM schema_migrations ORDER BY version", db=db)
            want = "\n".join("%d|%s" % (int(f.split("_", 1)[0]), f) for f in files)
            self.assertEqual(rows, want, "schema_migrations: one row per migration file")
            logs = [p.log_text() for p in reps]
            for f in files:
                n = sum(text.count("migration %s applied" % f) for text in logs)
                self.assertEqual(n, 1, "%s applied %d times in total over both replicas" % (f, n))
            self.assertEqual(sum("%d applied now" % len(files) in t for t in logs), 1, logs)
            self.assertEqual(sum("0 applied now" in t for t in logs), 1, logs)
            self.assertEqual(self.pg.psql("SELECT count(*) FROM thing", db=db), "1")
        finally:
            for p in reps:
                stop_by_test(p, self)

    def test_no_database_at_start(self):
        """Postgres is down when thing_service starts: it says it retries,
        answers 503 unavailable at once, and serves once Postgres is up."""
        cls = type(self)
        pg2 = cls.stack.postgres(name="postgres-late")
        pg2.stop()
        nats2 = cls.stack.nats(name="nats-late")
        svc = start_thing_service(cls.stack, nats2, pg2.url)
        try:
            cls.nc2 = nc = harness.NatsClient(nats2.url)
            harness.wait_for(lambda: "retrying" in svc.log_text(), 10,
                             what="thing_service to log that it retries the database")
            self.assertRegex(svc.log_text(), r"database not ready .*retrying")
            for rpc, data in (("get_things", "[]"), ("create_thing", body(name="early")),
                              ("get_thing", body(ZERO_UUID))):
                t0 = time.monotonic()
                m = nats_call(nc, rpc, data)
                self.assertNatsError(m, 503, "unavailable", what=rpc + " with no database")
                self.assertLess(time.monotonic() - t0, 1.0, "a 503 must come at once")
            pg2.start()
            took = wait_served(nc, timeout=12, what="thing_service serving once Postgres is up")
            self.assertLess(took, 10.0, "thing_service took %.1fs to notice Postgres" % took)
            m = nats_call(nc, "create_thing", body(name="late"))
            self.assertNotIn("Nats-Service-Error-Code", m.headers, m)
            self.assertEqual(pg2.psql("SELECT name FROM thing"), "late")
        finally:
            stop_by_test(svc, self)
            pg2.close()


# ---------------------------------------------------------------------------


class ThingOutageTest(ThingCase):
    """Creates keep coming while Postgres is stopped and started: fast 503s
    during the outage, success after it, and every create answered 200 is
    in the table."""

    LOADERS = 4

    @classmethod
    def setUpClass(cls):
        cls.start_things("things-outage")

    def test_outage_under_load(self):
        stop = threading.Event()
        lock = threading.Lock()
        calls = []  # (t_start, rid, status, text, elapsed) or (t_start, rid, None, repr(exc), elapsed)
        seq = iter(range(10 ** 9))

        def loader(n):
            while not stop.is_set():
                with lock:
                    i = next(seq)
                rid = "out-%d-%d" % (n, i)
                t0 = time.monotonic()
                try:
                    r = self.call("create_thing", body(name="load %d" % i, request_id=rid), timeout=20)
                    rec = (t0, rid, r.status, r.text, r.elapsed)
                except Exception as e:  # noqa: BLE001 - a failed call is recorded, not raised
                    rec = (t0, rid, None, repr(e), time.monotonic() - t0)
                with lock:
                    calls.append(rec)
                if rec[2] != 200:
                    time.sleep(0.01)  # no hot loop on fast errors

        def statuses_since(t):
            with lock:
                return [c[2] for c in calls if c[0] >= t]

        threads = [threading.Thread(target=loader, args=(n,), daemon=True) for n in range(self.LOADERS)]
        for t in threads:
            t.start()
        try:
            t_begin = time.monotonic()
            harness.wait_for(lambda: statuses_since(t_begin).count(200) >= 50, 10,
                             what="50 creates acknowledged before the outage")
            t_stop = time.monotonic()
            self.pg.stop()
            harness.wait_for(lambda: statuses_since(time.monotonic() - 0.3).count(503) >= 10, 5,
                             what="503s while Postgres is down")
            time.sleep(1.0)  # some more of the outage
            t_start = time.monotonic()
            self.pg.start()
            harness.wait_for(lambda: statuses_since(t_start).count(200) >= 50, 12,
                             what="creates acknowledged again after Postgres is back")
            t_back = min(c[0] for c in calls if c[0] >= t_start and c[2] == 200)
        finally:
            stop.set()
            for t in threads:
                t.join(30)

        with lock:
            done = list(calls)
        acked = {c[1]: json.loads(c[3])[0][0] for c in done if c[2] == 200}
        during = [c for c in done if t_stop <= c[0] < t_start]
        failures = [c for c in done if c[2] != 200]
        unexpected = [c for c in failures if c[2] != 503]
        self.assertFalse(unexpected, "only 200 and 503 expected, got e.g. %r" % unexpected[:5])
        for c in failures:
            err = json.loads(c[3])["error"]
            self.assertEqual((err["code"], err["type"]), (503, "unavailable"), c)
        slow = [c for c in failures if c[4] >= 2.0]
        self.assertFalse(slow, "503s must be fast, these took >= 2 s: %r" % slow[:5])
        self.assertGreater(sum(1 for c in during if c[2] == 503), 10, "no 503s during the outage")
        self.assertLess(t_back - t_start, 10.0, "success again %.1fs after the start" % (t_back - t_start))

        # every acknowledged create is in the table, with the uuid it was answered
        rows = self.pg.psql("SELECT r.request_id, t.uuid FROM thing_request r"
                            " JOIN thing t ON t.uuid = r.thing_uuid WHERE r.request_id LIKE 'out-%'")
        stored = dict(line.split("|") for line in rows.splitlines())
        missing = [rid for rid in acked if rid not in stored]
        self.assertFalse(missing, "%d acknowledged creates not in the table, e.g. %r"
                         % (len(missing), missing[:5]))
        wrong = [rid for rid, t in acked.items() if stored[rid] != t["uuid"]]
        self.assertFalse(wrong, "acknowledged uuid differs from the stored one: %r" % wrong[:5])
        self.assertGreater(len(acked), 100)

        # retrying what failed during the outage (same request_id) creates each once
        retry = [c[1] for c in failures][:40]
        for rid in retry:
            r = self.call("create_thing", body(name="retry", request_id=rid))
            self.assertEqual(r.status, 200, r.describe())
        again = [c[1] for c in done if c[2] == 200][:40]
        for rid in again:
            r = self.call("create_thing", body(name="retry", request_id=rid))
            self.assertEqual(r.json()[0][0], acked[rid], "a retry of an acknowledged create")
        n = int(self.pg.psql("SELECT count(*) FROM thing WHERE uuid IN (SELECT thing_uuid FROM "
                             "thing_request WHERE request_id LIKE 'out-%')"))
        self.assertEqual(n, int(self.pg.psql("SELECT count(*) FROM thing_request"
                                             " WHERE request_id LIKE 'out-%'")))
        note = "outage: %d calls, %d acknowledged, %d 503 (max %.3fs), back after %.2fs" % (
            len(done), len(acked), len(failures), max([c[4] for c in failures] or [0]), t_back - t_start)
        print("\n" + note)


if __name__ == "__main__":
    import unittest
    unittest.main()
