"""The page keeps receiving events across gateway restarts, in chromium.

tests/browser/gateway_restart.js opens frontend/app.js from the gateway and
subscribes to a topic; the test publishes an event on NATS and waits for the
page to show it, then restarts the gateway on the same port, first
gracefully (SIGTERM: the drain closes WebSockets 1001 without a WAMP
GOODBYE, so autobahn reconnects), then with SIGKILL, and checks that a new
session subscribed again and receives the next event. Prints the time from
the stop to the page being subscribed again.
"""

import os
import queue
import signal
import subprocess
import threading
import time
import unittest

import harness
from test_browser import BROWSER_DIR, CHROMIUM, require

TOPIC = "restart_it.ticks"


class GatewayRestartBrowserTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        require(True)

        def start(stack):
            cls.nats = stack.nats()
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("gateway_restart", start)

    def restart(self, sig):
        self.gw.signal(sig)
        rc = self.gw.wait(20)
        if sig == signal.SIGTERM:
            self.assertEqual(rc, 0, "the drain exits 0\n" + self.gw.log_tail())
        else:
            self.assertEqual(rc, -signal.SIGKILL)
        self.gw, _ = self.stack.gateway(self.nats, port=self.port)

    def test_page_follows_restarts(self):
        node = subprocess.Popen(
            ["node", os.path.join(BROWSER_DIR, "gateway_restart.js")], cwd=BROWSER_DIR,
            env=dict(os.environ, GATEWAY_URL="http://127.0.0.1:%d" % self.port, CHROMIUM=CHROMIUM,
                     TOPIC=TOPIC),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = queue.Queue()
        seen = []

        def reader():
            for line in node.stdout:
                seen.append(line)
                out.put(line.strip())
            out.put(None)

        threading.Thread(target=reader, daemon=True).start()

        def expect(word):
            while True:
                try:
                    line = out.get(timeout=60)
                except queue.Empty:
                    self.fail("no %r from the page within 60 s:\n%s" % (word, "".join(seen)))
                if line is None:
                    self.fail("the page script ended before %r:\n%s" % (word, "".join(seen)))
                if line == word:
                    return
                if line.startswith(("READY", "GOT", "FAIL")):
                    self.fail("expected %r, got %r:\n%s" % (word, line, "".join(seen)))

        def send(line):
            node.stdin.write(line + "\n")
            node.stdin.flush()

        try:
            figures = []
            for n, sig in enumerate([None, signal.SIGTERM, signal.SIGKILL]):
                if sig is not None:
                    send("RESTART")
                    t0 = time.monotonic()
                    self.restart(sig)
                expect("READY %d" % n)
                if sig is not None:
                    figures.append("%s %.1f s" % (sig.name, time.monotonic() - t0))
                self.nc.publish("events." + TOPIC, ('[[%d], {}]' % n).encode())
                send("EXPECT %d" % n)
                expect("GOT %d" % n)
            send("END")
            self.assertEqual(node.wait(60), 0, "".join(seen))
            self.assertIn("gateway_restart: all steps passed", "".join(seen))
            print("\npage subscribed again after a gateway restart: " + ", ".join(figures))
        finally:
            if node.poll() is None:
                node.kill()
                node.wait(10)


if __name__ == "__main__":
    unittest.main()
