"""The front end with auth on (GATEWAY_AUTH), in chromium.

tests/browser/page_auth.js opens the page the gateway serves: anonymously it
may call public rpcs, create_thing says "sign in" (401), a publish names the
scope it needs (403); a wrong token, one with quotes and HTML, and one of
10 KB are refused and the page goes on anonymously; a token without
things:write gets the 403 text, one with it creates a thing that the live
list shows; a sub with HTML shows as text; a JWT signs in too; sign out is
anonymous again. Halfway the test kills the gateway (SIGKILL) and starts it again on the same
port: the page must reconnect with its credential and subscribe again. Then
it restarts it (SIGTERM) with that token taken out of the auth file: the
page must say so and go on anonymously, not retry the token for ever.
"""

import json
import os
import signal
import sys
import tempfile
import unittest

import auth_kit
import harness
from test_browser import CHROMIUM, NodeScript, require

WRITER = "page-writer-token-0123456789"  # alice, things:write
READER = "page-reader-token-0123456789"  # bob, no scope
EVIL = "page-evil-token-0123456789ab"
EVIL_SUB = '<img src=x onerror="window.__pwned=1">"\'&amp;</p>'


class PageAuthTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        require(True)

        def start(stack):
            from test_things import start_thing_service
            cls.nats = stack.nats()
            pg = stack.postgres()
            stack.service("greeting_service", cls.nats)
            stack.service("websocket_test", cls.nats, ready_subject="websocket_test.hello_websocket")
            start_thing_service(stack, cls.nats, pg.url)
            keys = auth_kit.Keys()
            cls.jwt = keys.token("EdDSA", sub="jwt-carol", scope="things:write")
            cls.auth_file = auth_kit.write_auth_file(
                stack.dir, keys,
                tokens={WRITER: {"sub": "alice", "scopes": ["things:write"]},
                        READER: {"sub": "bob", "scopes": []},
                        EVIL: {"sub": EVIL_SUB, "scopes": []}})
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_AUTH": cls.auth_file})
            harness.wait_for(lambda: harness.post(cls.port, "thing_service.get_things",
                                                  "[]").status == 200,
                             harness.START_TIMEOUT, what="thing_service to answer")
        cls.start_stack("page_auth", start)

    def restart_gateway(self, sig):
        self.gw.signal(sig)
        self.assertEqual(self.gw.wait(20), 0 if sig == signal.SIGTERM else -sig)
        self.gw, _ = self.stack.gateway(self.nats, port=self.port,
                                        env={"GATEWAY_AUTH": self.auth_file})

    def test_sign_in_from_the_page(self):
        shots = os.environ.get("SCREENSHOT_DIR") or tempfile.gettempdir()
        node = NodeScript(self, "page_auth.js", dict(
            GATEWAY_URL="http://127.0.0.1:%d" % self.port, CHROMIUM=CHROMIUM,
            SCREENSHOT_DIR=shots, WRITER=WRITER, READER=READER, EVIL=EVIL, EVIL_SUB=EVIL_SUB,
            JWT=self.jwt))
        restarts = 0
        try:
            while True:
                line = node.next(180)
                if line is None:
                    break
                if line in ("RESTART", "REVOKE"):
                    if line == "REVOKE":
                        with open(self.auth_file) as f:
                            doc = json.load(f)
                        del doc["tokens"][WRITER]
                        with open(self.auth_file, "w") as f:
                            json.dump(doc, f)
                    # SIGKILL first, then the drain (SIGTERM: sockets closed
                    # 1001 without GOODBYE); autobahn reconnects after both.
                    self.restart_gateway(signal.SIGKILL if restarts == 0 else signal.SIGTERM)
                    restarts += 1
                    node.send("RESTARTED")
            rc = node.wait(30)
        finally:
            node.close()
        out = node.output()
        sys.stderr.write(out)  # the steps, for the log
        self.assertEqual((rc, restarts), (0, 2), out)
        self.assertIn("page_auth: all steps passed", out)


if __name__ == "__main__":
    unittest.main()
