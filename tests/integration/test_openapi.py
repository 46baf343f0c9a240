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


class OpenApiRestTest(harness.IntegrationCase):
    """The REST routes of a service (tests/support/rest_probe_service.c) in
    the document: validated, described, and called from Swagger UI."""

    @classmethod
    def setUpClass(cls):
        node_tests.node_script("openapi.mjs")
        cls.stack = harness.Stack("openapi-rest")
        try:
            cls.nats = cls.stack.nats()
            cls.stack.service("test_rest_probe_service", cls.nats,
                              ready_subject="widget_service.get_widget")
            cls.gw, cls.port = cls.stack.gateway(cls.nats)
        except BaseException:
            cls.stack.stop_all()
            raise

    def doc(self):
        def get():
            d = harness.http_call(self.port, "GET", "/openapi.json?refresh=1").json()
            return d if "/widgets/{n}" in d["paths"] else None
        return harness.wait_for(get, 10, what="the REST paths in /openapi.json")

    def rpcs(self):
        return sorted(p[1:] for p, item in self.doc()["paths"].items()
                      if p.startswith("/widget_service.") and "post" in item)

    def test_document_validates(self):
        rpcs = self.rpcs()
        self.assertIn("widget_service.get_widget", rpcs)
        out = node_tests.run_node(self, "openapi.mjs", rpcs,
                                  {"GATEWAY_URL": "http://127.0.0.1:%d" % self.port})
        self.assertTrue(json.loads(out.strip().splitlines()[-1])["valid"])

    def test_rest_operations(self):
        paths = self.doc()["paths"]
        ops = {(m.upper(), p) for p, item in paths.items() for m in item
               if not p.startswith("/widget_service.") and p.startswith(("/widgets", "/echo",
                                                                         "/pairs", "/slow",
                                                                         "/things"))}
        self.assertEqual(ops, {("GET", "/widgets/{n}"), ("POST", "/widgets"),
                               ("DELETE", "/widgets/{n}"), ("GET", "/widgets/{n}/lost"),
                               ("GET", "/echo/{text}"), ("POST", "/echo/{text}"),
                               ("GET", "/things"), ("GET", "/pairs/{a}/{b}"),
                               ("GET", "/slow/{ms}")})
        refs = ["XTimeout", "Traceparent", "RequestId"]
        get = paths["/widgets/{n}"]["get"]
        self.assertEqual(get["operationId"], "GET /widgets/{n}")
        self.assertEqual(get["tags"], ["widget_service"])
        self.assertEqual(get["parameters"], [
            {"name": "n", "in": "path", "required": True,
             "schema": {"type": "integer", "title": "n", "description": "the widget's number",
                        "examples": [7]}},
            {"name": "verbose", "in": "query", "required": False,
             "schema": {"type": "boolean", "title": "verbose", "description": "more words",
                        "default": False}},
        ] + [{"$ref": "#/components/parameters/" + r} for r in refs])
        self.assertNotIn("requestBody", get)
        self.assertEqual(sorted(get["responses"]),
                         ["200", "400", "404", "405", "413", "500", "503", "504"])
        post = paths["/widgets"]["post"]
        self.assertEqual(post["parameters"],
                         [{"$ref": "#/components/parameters/" + r} for r in refs])
        self.assertEqual(post["requestBody"], {
            "required": False, "content": {"application/json": {
                "schema": {"type": "object", "additionalProperties": False, "required": ["n"],
                           "properties": {
                               "n": {"type": "integer", "title": "n",
                                     "description": "the widget's number", "examples": [7]},
                               "tags": {"type": ["array", "null"], "title": "tags",
                                        "description": "labels", "default": None,
                                        "examples": [["red"]]}}},
                "example": {"n": 7, "tags": ["red"]}}}})
        self.assertEqual(post["responses"]["201"]["headers"],
                         {"Location": {"description": "/widgets/{n}",
                                       "schema": {"type": "string"}}})
        self.assertEqual(sorted(post["responses"]),
                         ["201", "400", "404", "405", "413", "415", "500", "503", "504"])
        delete = paths["/widgets/{n}"]["delete"]
        self.assertEqual(delete["responses"]["204"], {"description": "done; no body"})
        # the example body is one the route accepts
        r = harness.http_call(self.port, "POST", "/widgets",
                              json.dumps(post["requestBody"]["content"]["application/json"]
                                         ["example"]))
        self.assertEqual((r.status, r.json(), r.headers.get("Location")),
                         (201, {"n": 7, "tags": ["red"], "by": "widget_service"}, "/widgets/7"))

    def test_swagger_ui_calls_them(self):
        chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
        root = os.path.normpath(os.path.join(harness.HERE, "..", ".."))
        if chromium is None or not os.path.exists(
                os.path.join(root, "frontend", "vendor", "swagger-ui", "swagger-ui-bundle.js")):
            if os.environ.get("NRPC_BIN_DIR"):
                self.fail("chromium or Swagger UI missing (apt-get install chromium; npm ci)")
            self.skipTest("chromium or Swagger UI missing")
        rpcs = self.rpcs()
        paths = self.doc()["paths"]
        out = node_tests.run_node(self, "swagger_ui.mjs", rpcs,
                                  {"GATEWAY_URL": "http://127.0.0.1:%d" % self.port,
                                   "CHROMIUM": chromium}, timeout=90)
        ops = sum(len(item) for item in paths.values())
        self.assertEqual(json.loads(out.strip().splitlines()[-1])["rendered"], ops)


if __name__ == "__main__":
    unittest.main()
