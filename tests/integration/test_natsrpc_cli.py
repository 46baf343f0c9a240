"""The natsrpc command-line client (build/bin/natsrpc): call in its word and
raw forms, options anywhere before `--`, errors and exit statuses (a bad
--server exits 3 at once), ls/ping/info/stats from the service API, pub and
sub."""

import json
import signal
import socket
import time
import unittest

import harness

HELLO = '[["Hello, Bob Ross"], {}]'


class CliTest(harness.CliMixin, harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        cls.bin = harness.binary("natsrpc")
        cls.start_greeting("cli")

    # -- help

    def test_help(self):
        for args in (["--help"], ["-h"], ["call", "--help"], ["ls", "--help"], ["info", "--help"],
                     ["stats", "--help"], ["sub", "--help"], ["pub", "--help"],
                     ["call", "greeting_service.hello", "--help"]):
            with self.subTest(args=args):
                r = self.run_cli(*args, env={"NATS_URL": "nats://127.0.0.1:1"})
                self.assertExit(r, 0)
                self.assertIn("usage: natsrpc", r.out)

    # -- call

    def test_call_words(self):
        r = self.run_cli("call", "greeting_service.hello", "Bob", "--last_name", "Ross")
        self.assertExit(r, 0)
        self.assertEqual(r.out, HELLO + "\n")
        r = self.run_cli("call", "greeting_service.hello", "--first_name=Bob", "--last_name=Ross")
        self.assertEqual(r.out, HELLO + "\n", r.what)

    def test_call_raw_body(self):
        for body in ('[["Bob"], {"last_name": "Ross"}]', '{"first_name": "Bob", "last_name": "Ross"}',
                     '[["Bob", "Ross"]]'):
            with self.subTest(body=body):
                r = self.run_cli("call", "greeting_service.hello", body)
                self.assertExit(r, 0)
                self.assertEqual(r.out, HELLO + "\n")

    def test_call_values_parse_as_json(self):
        # a number where a string is declared: refused by the binding, so it
        # was sent as the JSON number 42
        r = self.run_cli("call", "greeting_service.hello", "42")
        self.assertExit(r, 1)
        self.assertIn("first_name", r.err)
        r = self.run_cli("call", "greeting_service.hello", '"42"')
        self.assertExit(r, 0)
        self.assertEqual(r.out, '[["Hello, 42"], {}]\n')

    def test_call_errors_exit_1(self):
        r = self.run_cli("call", "greeting_service.hello")
        self.assertExit(r, 1)
        self.assertIn("400", r.err)
        self.assertIn("missing required argument 'first_name'", r.err)
        self.assertEqual(r.out, "")
        r = self.run_cli("--json", "call", "greeting_service.hello", "Bob", "--nick", "B")
        self.assertExit(r, 1)
        self.assertErrorBody(json.loads(r.out), 400, contains="nick", context=r.what)
        r = self.run_cli("call", "greeting_service.no_such_rpc")
        self.assertExit(r, 1)
        self.assertIn("no such rpc", r.err)
        r = self.run_cli("--timeout", "0.3", "call", "greeting_service.hello_sleep", "Bob", "--seconds", "5")
        self.assertExit(r, 1)
        self.assertIn("no reply", r.err)

    def test_usage_errors_exit_2(self):
        for args in (["call"], ["call", "$SRV.PING"], ["call", "nodot"], ["--bogus", "ls"], ["frobnicate"],
                     [], ["info"], ["--timeout", "x", "ls"], ["sub"], ["sub", "a", "--count", "0"]):
            with self.subTest(args=args):
                self.assertExit(self.run_cli(*args), 2)

    def test_no_nats_exits_3(self):
        port = harness.free_port()
        r = self.run_cli("--server", "nats://127.0.0.1:%d" % port, "call", "greeting_service.hello", "Bob")
        self.assertExit(r, 3)
        self.assertIn("cannot connect", r.err)
        r = self.run_cli("ls", env={"NATS_URL": "nats://127.0.0.1:%d" % port})
        self.assertExit(r, 3)

    # -- options anywhere before --

    def published(self, *words):
        """The body that `natsrpc pub SUBJECT WORDS...` sends, as JSON."""
        subject = "cli_test.words_" + harness.rand_token(6)
        sub = self.nc.subscribe(subject)
        self.nc.flush()
        try:
            r = self.run_cli("pub", subject, *words)
            self.assertExit(r, 0)
            return json.loads(sub.next(5).data)
        finally:
            self.nc.unsubscribe(sub)

    def test_options_after_the_rpc_name(self):
        # --json after the rpc: natsrpc's, so the error body comes on stdout
        r = self.run_cli("call", "greeting_service.hello", "--json")
        self.assertExit(r, 1)
        self.assertErrorBody(json.loads(r.out), 400, contains="first_name", context=r.what)
        # --timeout after the rpc's own keyword arguments
        t0 = time.monotonic()
        r = self.run_cli("call", "greeting_service.hello_sleep", "Bob", "--seconds", "5", "--timeout", "0.3")
        self.assertExit(r, 1)
        self.assertIn("no reply", r.err)
        self.assertLess(time.monotonic() - t0, 3, r.what)
        # --server between the words (NATS_URL names nothing), short forms, =
        r = self.run_cli("call", "greeting_service.hello", "-t", "2", "Bob", "--server", self.nats.url,
                         "--last_name=Ross", "--timeout=3", env={"NATS_URL": "nats://127.0.0.1:1"})
        self.assertExit(r, 0)
        self.assertEqual(r.out, HELLO + "\n")
        r = self.run_cli("call", "greeting_service.hello", "Bob", "-s", self.nats.url, "--last_name", "Ross",
                         env={"NATS_URL": "nats://127.0.0.1:1"})
        self.assertEqual(r.out, HELLO + "\n", r.what)
        # every command, and pub's words keep only the rpc's part
        r = self.run_cli("stats", "greeting_service", "--json", "-t", "2")
        self.assertExit(r, 0)
        self.assertEqual(json.loads(r.out)[0]["name"], "greeting_service")
        self.assertEqual(self.published("x", "--json", "--n", "2", "--timeout", "3"), [["x"], {"n": 2}])

    def test_repeated_option_last_one_counts(self):
        r = self.run_cli("--timeout", "0.2", "call", "greeting_service.hello_sleep", "Bob", "--seconds", "0.5",
                         "--timeout", "5")
        self.assertExit(r, 0)
        r = self.run_cli("call", "greeting_service.hello_sleep", "Bob", "--seconds", "5", "--timeout", "5",
                         "-t", "0.2")
        self.assertExit(r, 1)
        self.assertIn("no reply", r.err)
        r = self.run_cli("--server", "nats://127.0.0.1:1", "call", "greeting_service.hello", "Bob",
                         "--last_name", "Ross", "--server", self.nats.url)
        self.assertExit(r, 0)
        self.assertEqual(r.out, HELLO + "\n")
        r = self.run_cli("--json", "call", "--json", "greeting_service.hello", "--json")
        self.assertExit(r, 1)
        self.assertErrorBody(json.loads(r.out), 400, contains="first_name", context=r.what)
        # a keyword argument given twice is still refused
        r = self.run_cli("call", "greeting_service.hello", "Bob", "--last_name", "A", "--last_name", "B")
        self.assertExit(r, 2)
        self.assertIn("given twice", r.err)

    def test_option_without_its_value_exits_2(self):
        for args in (["call", "greeting_service.hello", "Bob", "--timeout"],
                     ["call", "greeting_service.hello", "Bob", "--server"],
                     ["call", "greeting_service.hello", "Bob", "-s"],
                     ["call", "greeting_service.hello", "Bob", "--timeout", "--json"],
                     ["call", "greeting_service.hello", "Bob", "--server", "--", "x"],
                     ["--timeout", "ls"], ["ls", "--timeout="], ["sub", "x", "--count"]):
            with self.subTest(args=args):
                r = self.run_cli(*args)
                self.assertExit(r, 2)
                self.assertTrue("needs a value" in r.err or "must be seconds" in r.err, r.what)
        r = self.run_cli("call", "greeting_service.hello", "Bob", "--json=yes")
        self.assertExit(r, 2)
        self.assertIn("takes no value", r.err)

    def test_unknown_options(self):
        # natsrpc's words: before the rpc's subject, or for a command that has no rpc words
        for args in (["--bogus", "call", "greeting_service.hello", "Bob"],
                     ["call", "--bogus", "greeting_service.hello", "Bob"],
                     ["call", "-x", "greeting_service.hello"], ["ls", "--bogus"],
                     ["info", "greeting_service", "-x"], ["stats", "greeting_service", "--raw"],
                     ["--count", "2", "ls"], ["pub", "--nick", "some.subject", "x"]):
            with self.subTest(args=args):
                r = self.run_cli(*args)
                self.assertExit(r, 2)
                self.assertTrue("unknown option" in r.err or "is an option of natsrpc sub" in r.err, r.what)
        # after the subject they are the rpc's keyword arguments, refused by it
        for name in ("--bogus", "--count", "--raw", "--version"):
            with self.subTest(name=name):
                r = self.run_cli("call", "greeting_service.hello", "Bob", name, "1")
                self.assertExit(r, 1)
                self.assertIn("unexpected keyword argument '%s'" % name[2:], r.err)
        # and a lone dash or a negative number is a word
        self.assertEqual(self.published("-5", "-", "-x"), [[-5, "-", "-x"], {}])

    def test_double_dash_then_options_are_the_rpcs(self):
        r = self.run_cli("call", "greeting_service.hello", "--", "--json")
        self.assertExit(r, 1)
        self.assertEqual(r.out, "", "--json after -- is not natsrpc's: " + r.what)
        self.assertIn("unexpected keyword argument 'json'", r.err)
        r = self.run_cli("call", "greeting_service.hello", "--", "--help")
        self.assertExit(r, 1)
        self.assertIn("unexpected keyword argument 'help'", r.err)
        r = self.run_cli("call", "greeting_service.hello", "--", "-s")
        self.assertExit(r, 0)
        self.assertEqual(r.out, '[["Hello, -s"], {}]\n')
        r = self.run_cli("call", "greeting_service.hello", "--", "--first_name=--json", "--timeout", "--x")
        self.assertExit(r, 1)
        self.assertIn("unexpected keyword argument", r.err)
        r = self.run_cli("call", "greeting_service.hello", "--", "--first_name=--json")
        self.assertExit(r, 0)
        self.assertEqual(r.out, '[["Hello, --json"], {}]\n')
        # -- before the command, and a second -- is a word like any other
        r = self.run_cli("--", "call", "greeting_service.hello", "--json")
        self.assertExit(r, 1)
        self.assertEqual(r.out, "", r.what)
        self.assertEqual(self.published("a", "--", "--json", "--timeout", "3", "-s", "--", "b"),
                         [["a", "-s", "--", "b"], {"json": True, "timeout": 3}])

    def test_bad_server_exits_3_promptly(self):
        # a server that accepts the connection and never says INFO
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        try:
            bad = ["nats://127.0.0.1:%d" % harness.free_port(),    # nobody listens
                   "nats://127.0.0.1:%d" % silent.getsockname()[1],  # no NATS there
                   "nats://127.0.0.1:notaport", "", ",", " , "]
            for server in bad:
                for args in (["--server", server, "call", "greeting_service.hello", "Bob"],
                             ["call", "greeting_service.hello", "Bob", "--server=" + server],
                             ["ls", "-s", server],
                             ["sub", "x", "--server=" + server]):
                    with self.subTest(args=args):
                        t0 = time.monotonic()
                        r = self.run_cli(*args)
                        took = time.monotonic() - t0
                        self.assertExit(r, 3)
                        self.assertIn("cannot connect", r.err)
                        # a silent server gets 2 s to greet; a refused one fails at once
                        self.assertLess(took, 4.5, r.what)
        finally:
            silent.close()

    # -- service API

    def test_ls(self):
        r = self.run_cli("ls")
        self.assertExit(r, 0)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split()[:4], ["NAME", "VERSION", "ID", "RPCS"])
        self.assertTrue(any(l.split()[:2] == ["greeting_service", "1.0.0"] for l in lines[1:]), r.what)
        r = self.run_cli("ls", "--json")
        infos = json.loads(r.out)
        self.assertEqual([i["type"] for i in infos], ["io.nats.micro.v1.info_response"])

    def test_ping(self):
        r = self.run_cli("ping", "greeting_service")
        self.assertExit(r, 0)
        self.assertIn("greeting_service", r.out)
        self.assertExit(self.run_cli("ping", "no_such_service"), 1)

    def test_info(self):
        r = self.run_cli("info", "greeting_service")
        self.assertExit(r, 0)
        self.assertIn('first_name: string, last_name: string = ""', r.out)
        self.assertIn("greeting_service.hello_sleep", r.out)
        self.assertIn("Greets a person by name.", r.out)
        r = self.run_cli("info", "no_such_service")
        self.assertExit(r, 1)
        self.assertIn("no_such_service", r.err)

    def test_stats(self):
        def hello_requests():
            r = self.run_cli("stats", "greeting_service", "--json")
            self.assertExit(r, 0)
            return sum(e["num_requests"] for s in json.loads(r.out) for e in s["endpoints"]
                       if e["name"] == "hello")

        before = hello_requests()
        for _ in range(3):
            self.assertExit(self.run_cli("call", "greeting_service.hello", "Bob"), 0)
        self.assertEqual(hello_requests() - before, 3)
        r = self.run_cli("stats", "greeting_service")
        self.assertExit(r, 0)
        self.assertEqual(r.out.split()[:4], ["RPC", "ID", "REQUESTS", "ERRORS"])
        self.assertIn("hello_sleep", r.out)
        self.assertExit(self.run_cli("stats", "no_such_service"), 1)

    # -- pub / sub

    def test_pub(self):
        subject = "cli_test.pub_" + harness.rand_token(6)
        sub = self.nc.subscribe(subject)
        self.nc.flush()
        try:
            self.assertExit(self.run_cli("pub", subject, '[["a"], {"b": 1}]'), 0)
            self.assertEqual(sub.next(5).data, b'[["a"], {"b": 1}]')
            self.assertExit(self.run_cli("pub", subject, "x", "--n", "2"), 0)
            self.assertEqual(json.loads(sub.next(5).data), [["x"], {"n": 2}])
        finally:
            self.nc.unsubscribe(sub)

    def test_sub_count(self):
        subject = "cli_test.sub_" + harness.rand_token(6)
        p = self.stack.spawn("natsrpc-sub", [self.bin, "sub", subject, "--count", "2", "--raw"],
                             env={"NATS_URL": self.nats.url})
        p.signalled = True  # it exits by itself; checked here
        self.nats.wait_subscribers(subject, 1)
        self.nc.publish(subject, '[["one"], {}]')
        self.nc.publish(subject, "two", headers={"K": "v"})
        self.assertEqual(p.wait(10), 0, p.log_tail())
        lines = p.log_text().splitlines()
        self.assertIn('[["one"], {}]', lines)
        self.assertIn("two", lines)

    def test_sub_until_interrupted(self):
        subject = "cli_test.int_" + harness.rand_token(6)
        p = self.stack.spawn("natsrpc-sub", [self.bin, "sub", subject], env={"NATS_URL": self.nats.url})
        self.nats.wait_subscribers(subject, 1)
        self.nc.publish(subject, "hello there", reply="some.reply")
        harness.wait_for(lambda: "hello there" in p.log_text(), 5, what="the message printed")
        self.assertIn('Received on "%s" with reply "some.reply"' % subject, p.log_text())
        p.signal(signal.SIGINT)
        self.assertEqual(p.wait(10), 0, p.log_tail())


if __name__ == "__main__":
    unittest.main()
