"""A call's lifetime against real servers: answers exactly once, callbacks
exactly once, deadlines that reach the database, and the drain.

Each test here failed before calls were reference-counted: under the
sanitizer build as a use-after-free or a leak, in the normal build as a
missing log line, a hang or a wrong answer."""

import json
import os
import signal
import subprocess
import time
import unittest

import harness

MIGRATIONS = os.environ.get("THING_MIGRATIONS") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "services", "thing",
                 "migrations"))


def body(*args, **kwargs):
    return json.dumps([list(args), kwargs]).encode()


error_of = harness.nats_error


class TableLock:
    """A psql session holding LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE
    until release(): every query on the table waits meanwhile."""

    def __init__(self, pg, table, db=None):
        self.p = subprocess.Popen(
            [harness.pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(pg.port), "-U", pg.USER, "-d", db or pg.DB],
            env=pg.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.p.stdin.write(b"BEGIN;\nLOCK TABLE %s IN ACCESS EXCLUSIVE MODE;\n"
                           b"SELECT 'locked';\n" % table.encode())
        self.p.stdin.flush()
        line = b""
        t0 = time.monotonic()
        while b"locked" not in line:
            line = self.p.stdout.readline()
            if not line or time.monotonic() - t0 > 10:
                raise AssertionError("psql could not lock %s: %r" % (table, line))

    def release(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write(b"ROLLBACK;\n")
                self.p.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()  # by PID: our own child
                self.p.wait(5)
        self.p.stdout.close()


class LifetimeTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.pg = stack.postgres()
            cls.greeting = stack.service("greeting_service", cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("lifetime", start)

    # -- helpers -------------------------------------------------------------

    def fresh_db(self):
        return self.pg.create_database("t_" + harness.rand_token(8).lower())

    def things(self, env=None, url=None):
        e = {"DATABASE_URL": url or self.fresh_db(), "THING_MIGRATIONS": MIGRATIONS}
        e.update(env or {})
        svc = self.stack.service("thing_service", self.nats, env=e,
                                 ready_subject="thing_service.get_things")
        self.addCleanup(self.stop, svc)
        self.wait_served("thing_service.get_things", b"[]")
        return svc, e["DATABASE_URL"].rsplit("/", 1)[1]

    def stop(self, svc):
        """Each test's own services go when it ends: replicas left behind
        would share the queue group with the next test's."""
        if svc.alive():
            svc.signalled = True
            self.assertEqual(svc.stop(), 0, svc.log_tail())

    def wait_served(self, subject, data, timeout=15.0):
        def ok():
            m = self.nc.request(subject, data, timeout=2)
            return not m.no_responders and error_of(m) is None
        harness.wait_for(ok, timeout, interval=0.1, what="%s to answer 200" % subject)

    def probe(self, env=None):
        e = {"DATABASE_URL": self.fresh_db()}
        e.update(env or {})
        svc = self.stack.service("test_pg_probe_service", self.nats, env=e,
                                 ready_subject="pg_probe.twice")
        self.addCleanup(self.stop, svc)
        self.wait_served("pg_probe.twice", b"[]")
        return svc

    def expect_exit(self, svc, rc, within):
        got = svc.wait(within)
        svc.signalled = True
        self.assertEqual(got, rc, "%s exit status\n%s" % (svc.name, svc.log_tail()))
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(marker, svc.log_text())

    # -- the drain -----------------------------------------------------------

    def drain_with_locked_table(self, signals):
        svc, db = self.things(env={"NRPC_DRAIN_TIMEOUT": "1"})
        lock = TableLock(self.pg, "thing", db=db)
        try:
            sub = self.nc.request_sub("thing_service.get_things", b"[]")
            self.nc.flush()
            time.sleep(0.3)  # the query is on the wire, waiting for the lock
            for sig in signals:
                svc.signal(sig)
                time.sleep(0.1)
            m = sub.next(10)
            sub.unsubscribe()
            self.assertEqual(error_of(m), (503, "unavailable", "the service is shutting down"))
            # the drain deadline answered it; the pool's stop then cancels the
            # query, whose callback finds the call answered
            self.expect_exit(svc, 1, 10)
        finally:
            lock.release()

    def test_drain_deadline_with_a_query_waiting_on_a_lock(self):
        self.drain_with_locked_table([signal.SIGTERM])

    def test_sigterm_then_sigint_with_a_query_waiting_on_a_lock(self):
        self.drain_with_locked_table([signal.SIGTERM, signal.SIGINT])

    def drain_deadline_cancels(self, svc, subject, data, done):
        """A call of svc waits on work (an outgoing call, a query) when the
        drain deadline passes: the caller gets 503, the process exits 1, and
        the work's callback ran exactly once, canceled, freeing its heap
        closure (LeakSanitizer would report it otherwise)."""
        sub = self.nc.request_sub(subject, data)
        self.nc.flush()
        time.sleep(0.3)
        svc.signal(signal.SIGTERM)
        m = sub.next(10)
        sub.unsubscribe()
        self.assertEqual(error_of(m), (503, "unavailable", "the service is shutting down"))
        self.expect_exit(svc, 1, 10)
        self.assertEqual(svc.log_text().count(done), 1, svc.log_tail())
        self.assertIn("%s code=499 arg=closure" % done, svc.log_text())

    def test_outcall_callback_runs_once_at_the_drain_deadline(self):
        faulty = self.stack.service("test_faulty_service", self.nats,
                                    env={"NRPC_DRAIN_TIMEOUT": "1"},
                                    ready_subject="faulty_service.relay")
        self.addCleanup(self.stop, faulty)
        self.drain_deadline_cancels(faulty, "faulty_service.relay", body(
            "greeting_service.hello_sleep", [], {"name": "Bob", "seconds": 3}, 60), "relay_done")

    def test_query_callback_runs_once_at_the_drain_deadline(self):
        svc = self.probe(env={"NRPC_DRAIN_TIMEOUT": "1"})
        self.drain_deadline_cancels(svc, "pg_probe.sleep", body(3), "sleep_done")

    # -- answering twice -----------------------------------------------------

    def test_answering_twice_from_a_query_callback_is_refused(self):
        svc = self.probe()
        m = self.nc.request("pg_probe.twice", b"[]")
        self.assertIsNone(error_of(m), m)
        self.assertEqual(m.data, b"[[1], {}]")
        harness.wait_for(lambda: "second answer" in svc.log_text(), 5, what="the log line")
        self.assertIn("second answer: not allowed in this state; query after the answer: not allowed in this state",
                      svc.log_text())
        # the process is fine and answers again
        m = self.nc.request("pg_probe.twice", b"[]")
        self.assertEqual(m.data, b"[[1], {}]")

    # -- deadlines -----------------------------------------------------------

    def test_timeout_headers_that_overflow_mean_no_deadline(self):
        for v in ("9223372036854775807", "99999999999999999999999", "-9223372036854775808",
                  "12abc", "", " 5"):
            m = self.nc.request("greeting_service.hello", b'[["Bob"]]',
                                headers={"Nrpc-Timeout-Ms": v})
            if v.startswith("-"):
                # a negative budget is an exhausted one
                self.assertEqual(error_of(m)[0], 504, (v, m))
            else:
                self.assertIsNone(error_of(m), (v, m))
                self.assertEqual(m.data, b'[["Hello, Bob"], {}]', v)
        for line in ("runtime error:", "ERROR: AddressSanitizer"):
            self.assertNotIn(line, self.greeting.log_text())

    def test_deadline_bounds_queries_and_the_wait_for_a_connection(self):
        svc, db = self.things(env={"DB_POOL_SIZE": "1", "NRPC_MAX_IN_FLIGHT": "20"})
        lock = TableLock(self.pg, "thing", db=db)
        try:
            # one query takes the only connection and waits on the lock; four
            # more wait for the connection. All have 600 ms.
            t0 = time.monotonic()
            subs = [self.nc.request_sub("thing_service.get_things", b"[]",
                                        headers={"Nrpc-Timeout-Ms": "600"}) for _ in range(5)]
            self.nc.flush()
            errs = []
            for s in subs:
                errs.append(error_of(s.next(5)))
                s.unsubscribe()
            took = time.monotonic() - t0
            self.assertEqual([e[0] for e in errs], [504] * 5, errs)
            self.assertIn("during its database query, which was canceled", errs[0][2])
            for e in errs[1:]:
                self.assertIn("while it waited for a database connection", e[2])
            self.assertLess(took, 3.0)
            # the server is no longer running the first query
            def canceled():
                n = self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                                 "application_name = 'thing_service' AND state = 'active'", db=db)
                return n == "0"
            harness.wait_for(canceled, 5, what="the query past its deadline canceled on the server")
            # and the service keeps its in-flight room: 3 rounds of 10 calls
            # (more than NRPC_MAX_IN_FLIGHT in all) all end in 504, none in 503
            for _ in range(3):
                subs = [self.nc.request_sub("thing_service.get_things", b"[]",
                                            headers={"Nrpc-Timeout-Ms": "300"})
                        for _ in range(10)]
                self.nc.flush()
                for s in subs:
                    self.assertEqual(error_of(s.next(5))[0], 504)
                    s.unsubscribe()
        finally:
            lock.release()
        m = self.nc.request("thing_service.get_things", b"[]", headers={"Nrpc-Timeout-Ms": "2000"})
        self.assertIsNone(error_of(m), m)

    # -- several hosts -------------------------------------------------------

    def test_database_url_with_a_dead_first_host(self):
        db = "t_" + harness.rand_token(8).lower()
        self.pg.create_database(db)
        url = "postgresql://%s@127.0.0.1:1,127.0.0.1:%d/%s" % (self.pg.USER, self.pg.port, db)
        svc, _ = self.things(url=url)
        m = self.nc.request("thing_service.create_thing", body(name="two hosts"))
        self.assertIsNone(error_of(m), m)

    def test_target_session_attrs_skips_a_read_only_server(self):
        db = "t_" + harness.rand_token(8).lower()
        self.pg.create_database(db)
        # the same database on a server that only takes reads: libpq would
        # stop at its first host if the database were missing there
        ro = self.stack.postgres(name="postgres-read-only")
        ro.create_database(db)
        ro.psql("ALTER SYSTEM SET default_transaction_read_only = on")
        ro.psql("SELECT pg_reload_conf()")
        harness.wait_for(lambda: ro.psql("SHOW default_transaction_read_only") == "on", 5,
                         what="the read-only setting")
        url = ("postgresql://%s@127.0.0.1:%d,127.0.0.1:%d/%s?target_session_attrs=read-write"
               % (self.pg.USER, ro.port, self.pg.port, db))
        svc, _ = self.things(url=url)
        m = self.nc.request("thing_service.create_thing", body(name="read-write host"))
        self.assertIsNone(error_of(m), m)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM thing", db=db), "1")
        n = ro.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'thing_service'")
        self.assertEqual(n, "0")


if __name__ == "__main__":
    unittest.main()
