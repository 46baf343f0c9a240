"""Every binary answers --help with usage text and exit status 0, without
needing NATS."""

import os
import subprocess
import unittest

import harness

BINARIES = ["greeting_service", "natsrpc-gateway", "test_faulty_service"]


class HelpTest(unittest.TestCase):
    def check_help(self, name):
        path = harness.binary(name)
        # an unreachable NATS_URL: --help must not try to connect
        env = dict(os.environ, NATS_URL="nats://127.0.0.1:1")
        try:
            r = subprocess.run([path, "--help"], env=env, capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("%s --help did not exit within 10 s" % name)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, "%s --help: expected exit 0, got %d; output:\n%s"
                         % (name, r.returncode, out))
        self.assertIn("usage", out.lower(), "%s --help: expected usage text, got:\n%s" % (name, out))

    def test_greeting_service_help(self):
        self.check_help("greeting_service")

    def test_gateway_help(self):
        self.check_help("natsrpc-gateway")

    def test_faulty_service_help(self):
        self.check_help("test_faulty_service")


if __name__ == "__main__":
    unittest.main()
