"""The page keeps receiving events across gateway restarts, in chromium.

tests/browser/gateway_restart.js opens frontend/app.js from the gateway and
subscribes to a topic; the test publishes an event on NATS and waits for the
page to show it, then restarts the gateway on the same port, first
gracefully (SIGTERM: the drain closes WebSockets 1001 without a WAMP
GOODBYE, so autobahn reconnects), then with SIGKILL, and checks that a new
session subscribed again and receives the next event. Prints the time from
the stop to the page being subscribed again.
"""

import signal
import time
import unittest

import harness
from test_browser import CHROMIUM, NodeScript, require

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
        node = NodeScript(self, "gateway_restart.js", dict(
            GATEWAY_URL="http://127.0.0.1:%d" % self.port, CHROMIUM=CHROMIUM, TOPIC=TOPIC))

        def expect(word):
            while True:
                line = node.next(60, repr(word))
                if line is None:
                    self.fail("the page script ended before %r:\n%s" % (word, node.output()))
                if line == word:
                    return
                if line.startswith(("READY", "GOT", "FAIL")):
                    self.fail("expected %r, got %r:\n%s" % (word, line, node.output()))

        try:
            figures = []
            for n, sig in enumerate([None, signal.SIGTERM, signal.SIGKILL]):
                if sig is not None:
                    node.send("RESTART")
                    t0 = time.monotonic()
                    self.restart(sig)
                expect("READY %d" % n)
                if sig is not None:
                    figures.append("%s %.1f s" % (sig.name, time.monotonic() - t0))
                self.nc.publish("events." + TOPIC, ('[[%d], {}]' % n).encode())
                node.send("EXPECT %d" % n)
                expect("GOT %d" % n)
            node.send("END")
            self.assertEqual(node.wait(60), 0, node.output())
            self.assertIn("gateway_restart: all steps passed", node.output())
            print("\npage subscribed again after a gateway restart: " + ", ".join(figures))
        finally:
            node.close()


if __name__ == "__main__":
    unittest.main()
