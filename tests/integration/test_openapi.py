"""GET /openapi.json validated as OpenAPI 3.1 by an npm validator
(@seriousme/openapi-schema-validator), with every running rpc in it and its
request schemas checked by a JSON Schema 2020-12 validator
(tests/node/openapi.mjs); and Swagger UI at /docs rendering it in headless
Chromium (tests/node/swagger_ui.mjs)."""

import json
import os
import shutil
import unittest

import harness
import node_tests


class OpenApiTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        node_tests.node_script("openapi.mjs")
        cls.stack = harness.Stack("openapi")
        try:
            cls.nats = cls.stack.nats()
            cls.stack.service("greeting_service", cls.nats)
            cls.stack.service("test_faulty_service", cls.nats)
            cls.stack.service("websocket_test", cls.nats,
                              ready_subject="websocket_test.hello_websocket")
            cls.gw, cls.port = cls.stack.gateway(cls.nats)
        except BaseException:
            cls.stack.stop_all()
            raise

    def rpcs(self):
        services = harness.wait_for(
            lambda: (lambda d: d if len(d["services"]) == 3 else None)(
                harness.http_call(self.port, "GET", "/services?refresh=1").json()),
            10, what="the three services in /services")
        rpcs = sorted(e["subject"] for s in services["services"] for e in s["endpoints"])
        self.assertIn("greeting_service.hello", rpcs)
        self.assertIn("faulty_service.echo", rpcs)
        return rpcs

    def test_document_validates(self):
        rpcs = self.rpcs()
        out = node_tests.run_node(self, "openapi.mjs", rpcs,
                                  {"GATEWAY_URL": "http://127.0.0.1:%d" % self.port})
        result = json.loads(out.strip().splitlines()[-1])
        self.assertTrue(result["valid"])
        self.assertEqual(result["version"], "3.1")

    def test_examples_are_valid_calls(self):
        """Each rpc's example body (what Swagger UI's "Try it out" sends) is
        built from its declared parameters and is a call the rpc accepts."""
        self.rpcs()
        examples = harness.openapi_examples(self.port)
        want = {
            "/greeting_service.hello": ([[], {"first_name": "Bob", "last_name": "Ross"}],
                                        200, '[["Hello, Bob Ross"], {}]'),
            "/greeting_service.hello_sleep": ([[], {"name": "Sleepy Bob", "seconds": 1}],
                                              200, '[["Hello, Sleepy Bob"], {}]'),
            "/faulty_service.relay": ([[], {"subject": "faulty_service.echo", "args": [],
                                            "kwargs": {}, "timeout": 5}], 200, "[[], {}]"),
            "/faulty_service.echo": ([[], {}], 200, "[[], {}]"),
            "/faulty_service.fail": ([[], {}], 500, None),
            "/faulty_service.no_reply": ([[], {}], 500, None),
            "/websocket_test.websocket_test": ([[], {}], 200, '[[], {"yay": "yay"}]'),
            "/websocket_test.hello_websocket": ([[], {}], 200, "[[], {}]"),
        }
        self.assertEqual(sorted(examples), sorted(want))
        for path, (example, status, reply) in want.items():
            with self.subTest(path=path):
                self.assertEqual(examples[path], example)
                r = harness.http_call(self.port, "POST", path, json.dumps(examples[path]))
                self.assertNotEqual(r.status, 400, r.describe())
                self.assertEqual(r.status, status, r.describe())
                if reply is not None:
                    self.assertOk(r, reply)

    def test_swagger_ui_renders_it(self):
        root = os.path.normpath(os.path.join(harness.HERE, "..", ".."))
        chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
        missing = None
        if chromium is None:
            missing = "chromium not found (apt-get install chromium)"
        elif not os.path.isdir(os.path.join(root, "node_modules", "playwright-core")):
            missing = "playwright-core not installed (npm ci at the repository root)"
        elif not os.path.exists(os.path.join(root, "frontend", "vendor", "swagger-ui", "swagger-ui-bundle.js")):
            missing = "Swagger UI not vendored (npm ci at the repository root)"
        if missing:
            if os.environ.get("NRPC_BIN_DIR"):
                self.fail(missing)
            self.skipTest(missing)
        rpcs = self.rpcs()
        out = node_tests.run_node(self, "swagger_ui.mjs", rpcs,
                                  {"GATEWAY_URL": "http://127.0.0.1:%d" % self.port, "CHROMIUM": chromium},
                                  timeout=90)
        self.assertEqual(json.loads(out.strip().splitlines()[-1])["rendered"], len(rpcs) + 4)


if __name__ == "__main__":
    unittest.main()
