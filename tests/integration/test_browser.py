"""The front end and the WebSocket (WAMP) endpoint, end to end.

BrowserTest runs tests/browser/page_test.js: Debian's chromium, driven by
playwright-core, opens the page the gateway serves and subscribes,
publishes and calls through it. WampFanoutTest runs
tests/browser/wamp_fanout.js: 200 autobahn sessions on one topic share one
NATS subscription and all get a message published once.

Both need node, the packages of the root package.json (npm ci) and the
vendored client (frontend/build.sh); the browser test also needs chromium.
Under CTest a missing piece is a failure, not a skip.
"""

import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import harness
from test_websocket import WsClient

ROOT = os.path.normpath(os.path.join(harness.HERE, "..", ".."))
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def require(need_chromium):
    """Fails (under CTest) or skips (by hand) when a tool is missing."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (apt-get install nodejs npm)")
    for pkg in ("autobahn", "playwright-core"):
        if not os.path.isdir(os.path.join(ROOT, "node_modules", pkg)):
            missing.append("node_modules/%s (run 'npm ci' at the repository root)" % pkg)
    if not os.path.isfile(os.path.join(ROOT, "frontend", "vendor", "autobahn.min.js")):
        missing.append("frontend/vendor/autobahn.min.js (run 'sh frontend/build.sh' after npm ci)")
    if need_chromium and not os.access(CHROMIUM, os.X_OK):
        missing.append("%s (apt-get install chromium)" % CHROMIUM)
    if missing:
        msg = "missing: " + "; ".join(missing)
        if os.environ.get("NRPC_BIN_DIR"):
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)


def run_node(case, script, args, env, timeout):
    try:
        r = subprocess.run(["node", os.path.join(BROWSER_DIR, script)] + list(args),
                           cwd=BROWSER_DIR, env=dict(os.environ, **env), capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        case.fail("node %s did not finish within %d s\nstdout: %s" % (
            script, timeout, (e.stdout or b"").decode(errors="replace")))
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    case.assertEqual(r.returncode, 0, "node %s -> exit %d\nstdout:\n%s\nstderr:\n%s"
                     % (script, r.returncode, out, err[-4000:]))
    return out


class NodeScript:
    """A script of tests/browser that talks with the test in lines (the
    protocol of page_kit.js): what it prints comes back by next(), what the
    test says goes to its stdin by send(). Killed on close() if still
    running; output() is everything it printed."""

    def __init__(self, case, script, env):
        self.case, self.script = case, script
        self.proc = subprocess.Popen(
            ["node", os.path.join(BROWSER_DIR, script)], cwd=BROWSER_DIR,
            env=dict(os.environ, **env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.seen = []
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.seen.append(line)
            self._lines.put(line.strip())
        self._lines.put(None)

    def output(self):
        return "".join(self.seen)

    def next(self, timeout, what="a line"):
        """The next line it printed; None once it ended. Fails after timeout s."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            self.case.fail("%s: no %s within %g s:\n%s" % (self.script, what, timeout,
                                                             self.output()))

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait(self, timeout):
        return self.proc.wait(timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class _WampStack(harness.IntegrationCase):
    need_chromium = False

    LOOPS = 2  # GATEWAY_THREADS

    @classmethod
    def setUpClass(cls):
        require(cls.need_chromium)

        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            stack.service("websocket_test", cls.nats, ready_subject="websocket_test.hello_websocket")
            # Two loops, whatever the machine: each holds its own NATS
            # subscription for the topic its sessions share.
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_THREADS": str(cls.LOOPS)})
        cls.start_stack(cls.__name__.lower(), start)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port


class ThingsLiveTest(harness.IntegrationCase):
    """The page's live list of things: thing_service's events (published by
    its outbox as each change commits) reach chromium within 1 s of curl's
    answer."""

    @classmethod
    def setUpClass(cls):
        require(True)

        def start(stack):
            from test_things import MIGRATIONS
            cls.nats = stack.nats()
            pg = stack.postgres()
            stack.service("thing_service", cls.nats, ready_subject="thing_service.get_things",
                          env={"DATABASE_URL": pg.url, "THING_MIGRATIONS": MIGRATIONS})
            cls.gw, cls.port = stack.gateway(cls.nats)
            harness.wait_for(lambda: harness.post(cls.port, "thing_service.get_things",
                                                  "[]").status == 200,
                             harness.START_TIMEOUT, what="thing_service to answer")
        cls.start_stack("things_live", start)

    def test_curl_changes_show_live(self):
        out = run_node(self, "things_live.js", [],
                       {"GATEWAY_URL": "http://127.0.0.1:%d" % self.port, "CHROMIUM": CHROMIUM},
                       timeout=120)
        sys.stderr.write(out)  # the latencies, for the log
        self.assertIn("all steps passed", out)


class BrowserTest(_WampStack):
    need_chromium = True

    def test_page(self):
        shots = os.environ.get("SCREENSHOT_DIR") or tempfile.gettempdir()
        out = run_node(self, "page_test.js", [],
                       {"GATEWAY_URL": self.url, "CHROMIUM": CHROMIUM, "SCREENSHOT_DIR": shots},
                       timeout=120)
        self.assertIn("all steps passed", out)

    def test_static_files(self):
        r = harness.http_call(self.port, "GET", "/")
        self.assertEqual(r.status, 200, r.describe())
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/html"), r.describe())
        r = harness.http_call(self.port, "GET", "/app.js")
        self.assertEqual(r.status, 200, r.describe())
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/javascript"))
        r = harness.http_call(self.port, "GET", "/vendor/autobahn.min.js")
        self.assertEqual(r.status, 200, r.describe())
        for path in ("/../CMakeLists.txt", "/vendor/../../README.md", "/.gitignore",
                     "/vendor//autobahn.min.js", "/%2e%2e/README.md"):
            r = harness.http_call(self.port, "GET", path)
            self.assertNotEqual(r.status, 200, "must not be served: %s" % r.describe())
        # POST to an rpc path still reaches the rpc, not a file.
        r = harness.post(self.port, "websocket_test.websocket_test", "[]")
        self.assertOk(r, '[[], {"yay": "yay"}]')

    def test_readme_curl_line(self):
        """The README's curl line for hello_websocket, run as written (on
        this gateway's port) by the real curl, reaches a WAMP subscriber."""
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            found = re.findall(r"curl -X POST\s+(\S*/websocket_test\.hello_websocket -d '[^']*')",
                               f.read())
        self.assertEqual(len(found), 1, found)
        line = "curl -X POST " + found[0]
        self.assertIn(":5000/", line)
        argv = shlex.split(line.replace(":5000/", ":%d/" % self.port))
        c = WsClient(self.port)
        self.addCleanup(c.close)
        c.hello()
        c.send_json([32, 1, {}, "websocket_test.websocket_test"])
        sub = c.recv_json()
        self.assertEqual(sub[:2], [33, 1])
        self.nats.wait_subscribers("events.websocket_test.websocket_test", 1)
        r = subprocess.run(argv, capture_output=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (0, b"[[], {}]"), r.stderr.decode(errors="replace"))
        event = c.recv_json()
        self.assertEqual(event[:2], [36, sub[2]])
        self.assertEqual(event[3:], [{"topic": "websocket_test.websocket_test"}, ["websockets"],
                                     {"are": "awesome"}])

    def test_websocket_handshake_refusals(self):
        r = harness.http_call(self.port, "GET", "/websocket")
        self.assertEqual(r.status, 426, r.describe())
        base = {"Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
        r = harness.http_call(self.port, "GET", "/websocket", headers=dict(base))
        self.assertEqual(r.status, 400, "no subprotocol: %s" % r.describe())
        self.assertIn("wamp.2.json", r.json()["error"]["message"])
        r = harness.http_call(self.port, "GET", "/websocket",
                              headers=dict(base, **{"Sec-WebSocket-Version": "8",
                                                    "Sec-WebSocket-Protocol": "wamp.2.json"}))
        self.assertEqual(r.status, 426, r.describe())
        self.assertEqual(r.headers.get("Sec-WebSocket-Version"), "13")
        r = harness.http_call(self.port, "GET", "/websocket",
                              headers=dict(base, **{"Sec-WebSocket-Key": "short",
                                                    "Sec-WebSocket-Protocol": "wamp.2.json"}))
        self.assertEqual(r.status, 400, r.describe())


class WampFanoutTest(_WampStack):
    def test_fanout_200(self):
        out = run_node(self, "wamp_fanout.js", ["200"],
                       {"GATEWAY_URL": self.url,
                        "GATEWAY_LOOPS": str(self.LOOPS),
                        "NATS_MONITOR": "http://127.0.0.1:%d" % self.nats.mport},
                       timeout=120)
        self.assertIn("wamp_fanout: passed", out)


if __name__ == "__main__":
    unittest.main()


class CrossSiteTest(harness.IntegrationCase):
    """CSRF in a real browser: a page of another origin (http://localhost:<port>,
    another site than 127.0.0.1) makes chromium POST to
    thing_service.create_thing with a text/plain form, a no-cors fetch and a
    JSON fetch. Against a gateway that does not list that origin nothing
    runs (the number of things stays the same); against one that lists it
    in GATEWAY_CORS_ORIGINS only the JSON fetch runs, and the page can read
    its answer."""

    @classmethod
    def setUpClass(cls):
        require(True)
        cls.evil_port = harness.free_port()
        cls.evil_origin = "http://localhost:%d" % cls.evil_port

        def start(stack):
            from test_things import MIGRATIONS
            cls.nats = stack.nats()
            pg = stack.postgres()
            stack.service("thing_service", cls.nats, ready_subject="thing_service.get_things",
                          env={"DATABASE_URL": pg.url, "THING_MIGRATIONS": MIGRATIONS})
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.friendly_gw, cls.friendly_port = stack.gateway(
                cls.nats, env={"GATEWAY_CORS_ORIGINS": cls.evil_origin})
            harness.wait_for(lambda: harness.post(cls.port, "thing_service.get_things",
                                                  "[]").status == 200,
                             harness.START_TIMEOUT, what="thing_service to answer")
        cls.start_stack("cross_site", start)

    def things(self):
        r = harness.post(self.port, "thing_service.get_things", '[[], {"limit": 1000}]')
        self.assertEqual(r.status, 200, r.describe())
        return [t["name"] for t in r.json()[0]]

    def attack(self, port):
        out = run_node(self, "cross_site.js", [],
                       {"GATEWAY_URL": "http://127.0.0.1:%d" % port, "CHROMIUM": CHROMIUM,
                        "EVIL_PORT": str(self.evil_port)}, timeout=120)
        self.assertIn("EVIL_ORIGIN " + self.evil_origin, out)
        line = [l for l in out.splitlines() if l.startswith("RESULT ")]
        self.assertEqual(len(line), 1, out)
        return json.loads(line[0][len("RESULT "):])

    def test_cross_site_posts_do_not_run(self):
        before = self.things()
        results = self.attack(self.port)
        # The preflight was refused, so the browser never sent the POST.
        self.assertIn("TypeError", results["json"].get("error", ""), results)
        self.assertEqual(results["nocors"], {"type": "opaque", "status": 0}, results)
        # Every request the page made has been answered by now (the form's
        # frame loaded, both fetches settled): nothing was created.
        self.assertEqual(self.things(), before)
        for line in self.gw.log_text().splitlines():
            if "thing_service.create_thing" in line:
                self.assertIn(" 403 ", line)

    def test_listed_origin_may_call_with_json_only(self):
        before = self.things()
        results = self.attack(self.friendly_port)
        self.assertEqual(results["json"]["status"], 200, results)
        created = json.loads(results["json"]["body"])[0][0]
        self.assertEqual(created["name"], "evil-json")
        after = self.things()
        self.assertEqual(sorted(after), sorted(before + ["evil-json"]))
