"""natsrpc services seen by nats.js's service API client (@nats-io/services):
ping, info and stats list, inspect and count them (tests/node/services.mjs)."""

import json
import unittest

import harness
import node_tests


class NodeServicesTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        node_tests.node_script("services.mjs")  # skip or fail early without node

        def start(stack):
            cls.nats = stack.nats()
            cls.svc1 = stack.service("greeting_service", cls.nats)
            cls.svc2 = stack.service("greeting_service", cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("node-services", start)

    def test_discovered_by_nats_js(self):
        for i in range(4):
            self.assertNatsOk(self.nc.request("greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')
        out = node_tests.run_node(self, "services.mjs", ["greeting_service", "4"], {"NATS_URL": self.nats.url})
        found = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(len(found["instances"]), 2)
        self.assertEqual({e["name"] for e in found["endpoints"]}, {"hello", "hello_sleep"})
        self.assertEqual(found["requests"], 4)


if __name__ == "__main__":
    unittest.main()
