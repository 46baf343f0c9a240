"""REST routes through the gateway, as curl sends them: thing_service's CRUD
with every status code, path, query and body binding, hostile targets and
bodies, concurrent requests; routes that come and go with the services that
declare them (no gateway restart), conflicts (the first service keeps the
route) and a service killed in the middle of a call.

Two classes, each with its own nats-server and gateway:
  RestApiTest        PostgreSQL, thing_service and widget_service (the test
                     service of tests/support/rest_probe_service.c)
  RestLifecycleTest  widget services started and stopped by the tests
"""

import concurrent.futures
import json
import re
import shutil
import signal
import subprocess
import threading
import time
import unittest

import harness
from harness import http_call, post
from test_things import THING_TEXT_RE, UUID_RE, ZERO_UUID, start_thing_service, wait_served

JSON = "application/json"


def error(code, etype, message):
    return {"error": {"code": code, "type": etype, "message": message}}


def no_such_path(path):
    return error(404, "not_found", "no such path: " + path)


def start_probe(stack, nats, name="widget_service"):
    return stack.service("test_rest_probe_service", nats, env={"REST_PROBE_SERVICE": name},
                         ready_subject=name + ".get_widget")


class RestCase(harness.IntegrationCase):
    port = None

    def req(self, method, path, body=None, headers=None, timeout=30.0):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return http_call(self.port, method, path, body=body, headers=headers, timeout=timeout)

    def assertAnswer(self, r, status, value, location=None):
        """The whole answer: status, JSON content type, body, Location."""
        self.assertEqual(r.status, status, r.describe())
        self.assertEqual(r.content_type, JSON, r.describe())
        self.assertEqual(r.json(), value, r.describe())
        self.assertEqual(r.headers.get("Location"), location, r.describe())

    def assertError(self, r, status, etype, message, allow=None):
        self.assertEqual(r.status, status, r.describe())
        self.assertEqual(r.content_type, JSON, r.describe())
        self.assertEqual(r.json(), error(status, etype, message), r.describe())
        self.assertEqual(r.headers.get("Allow"), allow, r.describe())
        self.assertIsNone(r.headers.get("Location"), r.describe())

    def services_doc(self):
        r = self.req("GET", "/services?refresh=1")
        self.assertEqual(r.status, 200, r.describe())
        return r.json()

    def wait_route(self, path, want_status, timeout=15):
        """Waits until GET path answers want_status; returns that answer."""
        got = []

        def ok():
            r = self.req("GET", path, timeout=5)
            got[:] = [r]
            return r.status == want_status

        harness.wait_for(ok, timeout, interval=0.1,
                         what="GET %s to answer %d (last: %s)" % (
                             path, want_status, got and got[0].describe()))
        return got[0]


# ---------------------------------------------------------------------------


class RestApiTest(RestCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.pg = stack.postgres()
            cls.svc = start_thing_service(stack, cls.nats, cls.pg.url)
            cls.nc = harness.NatsClient(cls.nats.url)
            wait_served(cls.nc)
            # Started after thing_service: its GET /things is a conflict it loses.
            cls.probe = start_probe(stack, cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
        cls.start_stack("rest", start)

    def setUp(self):
        # Both services' routes are in the gateway's table.
        self.wait_route("/widgets/1", 200)
        self.wait_route("/things?limit=1", 200)

    def create(self, name):
        r = self.req("POST", "/things", {"name": name})
        self.assertEqual(r.status, 201, r.describe())
        thing = r.json()
        self.assertRegex(json.dumps(thing), "^%s$" % (THING_TEXT_RE % re.escape(name)))
        self.assertAnswer(r, 201, thing, location="/things/" + thing["uuid"])
        return thing

    # -- the CRUD on things, every status code --------------------------------

    def test_crud_on_things(self):
        # POST /things -> 201, Location, the thing
        alice = self.create("Alice")
        # GET /things/{uuid} -> 200, the same thing
        self.assertAnswer(self.req("GET", "/things/" + alice["uuid"]), 200, alice)
        # PUT /things/{uuid} with the fields in the body -> 200, renamed
        r = self.req("PUT", "/things/" + alice["uuid"], {"name": "Bob"})
        bob = dict(alice, name="Bob")
        self.assertAnswer(r, 200, bob)
        self.assertAnswer(self.req("GET", "/things/" + alice["uuid"]), 200, bob)
        # GET /things lists it: {"items": [...], "next": cursor}
        r = self.req("GET", "/things?limit=1000")
        self.assertEqual(r.status, 200, r.describe())
        page = r.json()
        self.assertEqual(sorted(page), ["items", "next"])
        self.assertIn(bob, page["items"])
        # DELETE /things/{uuid} -> 204, no body
        r = self.req("DELETE", "/things/" + alice["uuid"])
        self.assertEqual((r.status, r.body), (204, b""), r.describe())
        self.assertIsNone(r.headers.get("Location"))
        # then 404 for GET, PUT and DELETE
        gone = "no thing with uuid " + alice["uuid"]
        self.assertError(self.req("GET", "/things/" + alice["uuid"]), 404, "not_found", gone)
        self.assertError(self.req("PUT", "/things/" + alice["uuid"], {"name": "C"}), 404,
                         "not_found", gone)
        self.assertError(self.req("DELETE", "/things/" + alice["uuid"]), 404, "not_found", gone)

    def test_list_pages_with_limit_and_after(self):
        made = [self.create("page %d" % i)["uuid"] for i in range(3)]
        seen, after, pages = [], None, 0
        while True:
            path = "/things?limit=2" + ("&after=" + after if after else "")
            r = self.req("GET", path)
            self.assertEqual(r.status, 200, r.describe())
            page = r.json()
            self.assertEqual(sorted(page), ["items", "next"], r.describe())
            self.assertLessEqual(len(page["items"]), 2)
            seen += [t["uuid"] for t in page["items"]]
            pages += 1
            after = page["next"]
            if after is None:
                break
        for u in made:
            self.assertIn(u, seen)
        self.assertEqual(len(seen), len(set(seen)))
        self.assertGreaterEqual(pages, 2)

    def test_unknown_uuid_is_404(self):
        self.assertError(self.req("GET", "/things/" + ZERO_UUID), 404, "not_found",
                         "no thing with uuid " + ZERO_UUID)

    def test_bad_uuid_is_400(self):
        for raw, text in (("not-a-uuid", "not-a-uuid"), ("%20x", " x"), ("%C3%A9", "\u00e9")):
            with self.subTest(raw=raw):
                self.assertError(self.req("GET", "/things/" + raw), 400, "invalid_argument",
                                 "argument 'uuid' is not a UUID: '%s'" % text)

    def test_bad_bodies_are_400(self):
        cases = [
            ("{", "the body must be a JSON object of parameters: string or '}' expected near "
                  "end of file"),
            ("[\"Alice\"]", "the body must be a JSON object of parameters"),
            ("\"Alice\"", "the body must be a JSON object of parameters: '[' or '{' expected "
                        "near '\"Alice\"'"),
            ("null", "the body must be a JSON object of parameters: '[' or '{' expected near "
                     "'null'"),
        ]
        for body, message in cases:
            with self.subTest(body=body):
                self.assertError(self.req("POST", "/things", body), 400, "invalid_argument",
                                 message)
        # a wrong JSON type and an unknown field: the service's binding says
        self.assertError(self.req("POST", "/things", {"name": 5}), 400, "invalid_argument",
                         "thing_service.create_thing: argument 'name' must be a string, not an "
                         "integer")
        self.assertError(self.req("POST", "/things", {"name": "x", "color": "red"}), 400,
                         "invalid_argument",
                         "thing_service.create_thing: got an unexpected keyword argument "
                         "'color'")
        self.assertError(self.req("POST", "/things", {}), 400, "invalid_argument",
                         "thing_service.create_thing: missing required argument 'name' "
                         "(string)")
        # a path parameter given again in the body
        self.assertError(self.req("PUT", "/things/" + ZERO_UUID, {"uuid": ZERO_UUID, "name": "x"}),
                         400, "invalid_argument",
                         "parameter 'uuid' is given twice (path or query, and body)")

    def test_bad_query_parameters_are_400(self):
        cases = [
            ("/things?color=red", "unknown query parameter 'color'"),
            ("/things?limit=ten", "parameter 'limit' must be an integer, not 'ten'"),
            ("/things?limit=1&limit=2", "parameter 'limit' is given twice"),
            ("/things?limit=%zz", "the query string is not name=value pairs"),
            ("/things?after=%ff", "parameter 'after' is not UTF-8 text"),
            ("/things/%s?uuid=%s" % (ZERO_UUID, ZERO_UUID), "parameter 'uuid' is given twice"),
        ]
        for path, message in cases:
            with self.subTest(path=path):
                self.assertError(self.req("GET", path), 400, "invalid_argument", message)
        # the service's own check of a value of the right type
        self.assertError(self.req("GET", "/things?limit=0"), 400, "invalid_argument",
                         "argument 'limit' must be between 1 and 1000, not 0")

    def test_other_methods_are_405_with_allow(self):
        self.assertError(self.req("PATCH", "/things/" + ZERO_UUID, {"name": "x"}), 405,
                         "method_not_allowed", "PATCH is not allowed here; use DELETE, GET, PUT",
                         allow="DELETE, GET, PUT")
        self.assertError(self.req("DELETE", "/things"), 405, "method_not_allowed",
                         "DELETE is not allowed here; use GET, POST", allow="GET, POST")
        self.assertError(self.req("PUT", "/things"), 405, "method_not_allowed",
                         "PUT is not allowed here; use GET, POST", allow="GET, POST")

    def test_a_body_that_is_not_json_is_415(self):
        before = self.thing_count()
        for ctype, body in (("text/plain", '{"name": "x"}'),
                            ("application/x-www-form-urlencoded", "name=x"),
                            ("multipart/form-data; boundary=b",
                             "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b--")):
            with self.subTest(ctype=ctype):
                r = self.req("POST", "/things", body, headers={"Content-Type": ctype})
                self.assertError(r, 415, "unsupported_media_type",
                                 "the body must be JSON (Content-Type: application/json)")
        # from a page of another origin, as a browser's form would send it:
        # the edge's CSRF check refuses it before the route looks at the body
        r = self.req("POST", "/things", "name=evil",
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Origin": "http://evil.example"})
        self.assertError(r, 403, "forbidden",
                         "this page's origin may not call the gateway: it is neither the "
                         "gateway's own nor listed in GATEWAY_CORS_ORIGINS")
        self.assertEqual(self.thing_count(), before)
        # JSON types with parameters, a +json type, and no type at all are JSON
        for headers in ({"Content-Type": "application/json; charset=utf-8"},
                        {"Content-Type": "application/merge-patch+json"}, {}):
            with self.subTest(headers=headers):
                r = http_call(self.port, "POST", "/echo/x", body='{"a": 1}', headers=headers)
                self.assertAnswer(r, 200, {"a": 1, "items": ["x"]})
        # an empty body needs no type
        r = self.req("POST", "/echo/x", "", headers={"Content-Type": "text/plain"})
        self.assertAnswer(r, 200, "x")

    def thing_count(self):
        return len(self.req("GET", "/things?limit=1000").json()["items"])

    def test_rpc_route_still_works(self):
        r = post(self.port, "thing_service.get_thing", json.dumps([[ZERO_UUID]]))
        self.assertError(r, 404, "not_found", "no thing with uuid " + ZERO_UUID)
        r = post(self.port, "widget_service.get_widget", '[[3], {"verbose": true}]')
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.json(), [[{"n": 3, "verbose": True, "by": "widget_service"}], {}])

    def test_head_is_get_without_a_body(self):
        r = self.req("HEAD", "/widgets/4")
        self.assertEqual((r.status, r.body), (200, b""), r.describe())
        self.assertEqual(r.content_type, JSON)

    def test_trace_headers_and_metrics(self):
        tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        r = self.req("GET", "/widgets/8", headers={"traceparent": tp, "X-Request-Id": "rest-1"})
        self.assertAnswer(r, 200, {"n": 8, "verbose": False, "by": "widget_service"})
        self.assertEqual(r.headers.get("X-Request-Id"), "rest-1")
        self.assertTrue(r.headers.get("traceparent", "").startswith(
            "00-0af7651916cd43dd8448eb211c80319c-"), r.headers)
        # counted under the rpc it called, like POST /<service>.<method>
        m = self.req("GET", "/metrics").text
        self.assertRegex(m, r'natsrpc_gateway_requests_total\{rpc="widget_service.get_widget",'
                            r'status="200"\} [1-9]')

    # -- path and query binding ----------------------------------------------------

    def test_typed_path_and_query_parameters(self):
        cases = [
            ("/widgets/5", 200, {"n": 5, "verbose": False, "by": "widget_service"}),
            ("/widgets/-3?verbose=true", 200, {"n": -3, "verbose": True, "by": "widget_service"}),
            ("/widgets/%35?verbose=0", 200, {"n": 5, "verbose": False, "by": "widget_service"}),
            ("/wid%67ets/6", 200, {"n": 6, "verbose": False, "by": "widget_service"}),
            ("/echo/a+b?c=d+e&f=%26%3D", 200, {"c": "d e", "f": "&=", "items": ["a+b"]}),
            ("/echo/h%C3%A9llo", 200, "h\u00e9llo"),
            ("/echo/...", 200, "..."),
            ("/echo/x?&&a=1&&", 200, {"a": "1", "items": ["x"]}),
            ("/echo/x?flag", 200, {"flag": "", "items": ["x"]}),
            ("/pairs/a%20b/c", 200, {"items": ["a b", "c"]}),
        ]
        for path, status, value in cases:
            with self.subTest(path=path):
                self.assertAnswer(self.req("GET", path), status, value)
        bad = [
            ("/widgets/x", "parameter 'n' must be an integer, not 'x'"),
            ("/widgets/1.5", "parameter 'n' must be an integer, not '1.5'"),
            ("/widgets/99999999999999999999",
             "parameter 'n' must be an integer, not '99999999999999999999'"),
            ("/widgets/5?verbose=maybe", "parameter 'verbose' must be a boolean, not 'maybe'"),
            ("/echo/x?text=y", "parameter 'text' is given twice"),
            ("/echo/x?=1", "the query string is not name=value pairs"),
            ("/echo/x?%ff=1", "a query parameter's name is not UTF-8 text"),
        ]
        for path, message in bad:
            with self.subTest(path=path):
                self.assertError(self.req("GET", path), 400, "invalid_argument", message)

    def test_create_with_location_from_the_result(self):
        r = self.req("POST", "/widgets", {"n": 12, "tags": ["red"]})
        self.assertAnswer(r, 201, {"n": 12, "tags": ["red"], "by": "widget_service"},
                          location="/widgets/12")
        r = self.req("DELETE", "/widgets/12")
        self.assertEqual((r.status, r.body), (204, b""), r.describe())
        self.assertError(self.req("POST", "/widgets", {"n": 1, "tags": "red"}), 400,
                         "invalid_argument",
                         "widget_service.make_widget: argument 'tags' must be an array, not a "
                         "string")
        self.assertError(self.req("GET", "/widgets/5/lost"), 404, "not_found", "no widget 5")

    # -- hostile targets ---------------------------------------------------------

    def test_percent_2f_is_not_a_separator(self):
        # /echo/{text} has one segment: a%2Fb is no route, never "a/b"; nor
        # is a/b (two segments)
        for path in ("/echo/a%2Fb", "/echo/a%2fb", "/things/%2F"):
            with self.subTest(path=path):
                r = self.req("GET", path)
                self.assertEqual(r.status, 404, r.describe())
        self.assertEqual(self.req("GET", "/echo/a/b").status, 404)
        # /pairs/{a}/{b}: "a%2Fb/c" is not a="a", b="b/c" or any split
        self.assertEqual(self.req("GET", "/pairs/a%2Fb/c").status, 404)

    def test_nul_dots_and_repeated_slashes(self):
        for path in ("/echo/a%00b", "/echo/%00", "/echo/..", "/echo/.", "/echo/%2e%2E",
                     "/things/..", "//widgets/5", "/widgets//5", "/widgets/5/", "/pairs//b",
                     "/widgets/../widgets/5", "/echo/%", "/echo/%4"):
            with self.subTest(path=path):
                r = self.req("GET", path)
                self.assertEqual(r.status, 404, r.describe())
                self.assertEqual(r.content_type, JSON)
                self.assertEqual(r.json()["error"]["type"], "not_found")

    def test_very_long_paths(self):
        long_text = "a" * 10000
        self.assertAnswer(self.req("GET", "/echo/" + long_text), 200, long_text)
        # past MHD's memory for the request line: refused, the gateway lives on
        r = self.req("GET", "/echo/" + "a" * 20000)
        self.assertEqual(r.status, 414, r.describe())
        self.assertAnswer(self.req("GET", "/widgets/1"), 200,
                          {"n": 1, "verbose": False, "by": "widget_service"})

    def test_many_and_huge_query_parameters(self):
        # many parameters, all bound (echo takes any keyword)
        q = "&".join("p%d=%d" % (i, i) for i in range(100))
        want = {"p%d" % i: str(i) for i in range(100)}
        want["items"] = ["x"]
        self.assertAnswer(self.req("GET", "/echo/x?" + q), 200, want)
        # more than a connection's memory can hold as arguments: 414 at once
        # (before the fix the connection hung past its timeout)
        for n, size in ((300, 1), (100, 100), (60, 230)):
            with self.subTest(n=n, size=size):
                q = "&".join("p%d=%s" % (i, "v" * size) for i in range(n))
                r = self.req("GET", "/echo/x?" + q, timeout=10)
                self.assertError(r, 414, "too_large",
                                 "the query string is too large: %d arguments in a %d-byte "
                                 "target" % (n, len("/echo/x?" + q)))
        # one huge value is fine
        big = "b" * 9000
        self.assertAnswer(self.req("GET", "/echo/x?q=" + big), 200, {"q": big, "items": ["x"]})
        # and pages and rpcs are protected the same way
        r = self.req("GET", "/healthz?" + "&".join(["a"] * 300), timeout=10)
        self.assertEqual(r.status, 414, r.describe())

    def test_body_array_instead_of_object(self):
        self.assertError(self.req("POST", "/widgets", [7]), 400, "invalid_argument",
                         "the body must be a JSON object of parameters")
        self.assertError(self.req("POST", "/widgets", [[7], {}]), 400, "invalid_argument",
                         "the body must be a JSON object of parameters")

    def test_body_over_the_limit_is_413(self):
        r = self.req("POST", "/echo/x", '{"a": "' + "x" * (2 << 20) + '"}')
        self.assertEqual(r.status, 413, r.describe())
        self.assertEqual(r.json()["error"]["type"], "too_large")

    def test_concurrent_requests(self):
        def one(i):
            if i % 3 == 0:
                r = self.req("GET", "/widgets/%d?verbose=true" % i)
                return r.status, r.json(), {"n": i, "verbose": True, "by": "widget_service"}
            if i % 3 == 1:
                r = self.req("POST", "/widgets", {"n": i})
                return (r.status, r.json(), r.headers.get("Location")), \
                    None, (201, {"n": i, "tags": None, "by": "widget_service"}, "/widgets/%d" % i)
            r = self.req("GET", "/echo/t%d?i=%d" % (i, i))
            return r.status, r.json(), {"i": str(i), "items": ["t%d" % i]}

        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as ex:
            results = list(ex.map(one, range(300)))
        for i, res in enumerate(results):
            if i % 3 == 1:
                self.assertEqual(res[0], res[2], i)
            else:
                self.assertEqual(res[:2], (200, res[2]), i)

    # -- conflicts --------------------------------------------------------------

    def test_conflict_with_thing_service_is_reported_and_the_first_wins(self):
        doc = self.services_doc()
        self.assertEqual(doc["conflicts"], [
            "widget_service.list_things declares GET /things, which thing_service.get_things "
            "serves already"])
        routes = {(r["method"], r["path"]): r["subject"] for r in doc["routes"]}
        self.assertEqual(routes[("GET", "/things")], "thing_service.get_things")
        self.assertEqual(routes[("POST", "/things")], "thing_service.create_thing")
        self.assertEqual(routes[("GET", "/widgets/{n}")], "widget_service.get_widget")
        r = self.req("GET", "/things?limit=1")
        self.assertEqual(sorted(r.json()), ["items", "next"], r.describe())
        # logged once, however many gathers saw it
        for _ in range(3):
            self.services_doc()
        log = self.gw.log_text()
        self.assertEqual(log.count("REST route conflict: widget_service.list_things declares "
                                   "GET /things, which thing_service.get_things serves already"),
                         1, log[-3000:])

    # -- the README's curl lines ---------------------------------------------

    @unittest.skipUnless(shutil.which("curl"), "curl is not installed")
    def test_readme_curl_lines(self):
        base = "http://127.0.0.1:%d" % self.port

        def curl(*args):
            out = subprocess.run(["curl", "-sS", "-i", "--max-time", "20"] + list(args),
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            head, _, body = out.stdout.replace("\r\n", "\n").partition("\n\n")
            status = int(head.split()[1])
            headers = dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line)
            return status, headers, body

        status, headers, body = curl("--json", '{"name": "Alice"}', base + "/things")
        self.assertEqual(status, 201, body)
        thing = json.loads(body)
        self.assertEqual(headers.get("Location"), "/things/" + thing["uuid"])
        self.assertRegex(thing["uuid"], "^%s$" % UUID_RE)
        status, _, body = curl(base + "/things/" + thing["uuid"])
        self.assertEqual((status, json.loads(body)), (200, thing))
        status, _, body = curl("-X", "PUT", "--json", '{"name": "Bob"}',
                               base + "/things/" + thing["uuid"])
        self.assertEqual((status, json.loads(body)), (200, dict(thing, name="Bob")))
        status, _, body = curl(base + "/things")
        self.assertEqual(status, 200)
        self.assertIn(dict(thing, name="Bob"), json.loads(body)["items"])
        status, _, body = curl("-X", "DELETE", base + "/things/" + thing["uuid"])
        self.assertEqual((status, body), (204, ""))
        status, _, body = curl(base + "/things/" + thing["uuid"])
        self.assertEqual((status, json.loads(body)),
                         (404, error(404, "not_found", "no thing with uuid " + thing["uuid"])))
        # curl -d sends a form type: refused, --json is the way
        status, _, body = curl("-d", '{"name": "Alice"}', base + "/things")
        self.assertEqual(status, 415, body)


# ---------------------------------------------------------------------------


class RestLifecycleTest(RestCase):
    """Routes follow the services on NATS, with the same gateway process."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("rest-life", start)

    def tearDown(self):
        super().tearDown()
        for p in list(getattr(self, "_probes", [])):
            if p.alive():
                p.signalled = True
                p.stop()

    def probe(self, name="widget_service"):
        p = start_probe(self.stack, self.nats, name)
        self._probes = getattr(self, "_probes", []) + [p]
        return p

    def stop(self, p):
        p.signalled = True
        self.assertEqual(p.stop(), 0, p.log_tail())

    def test_a_route_comes_with_its_service_and_goes_with_it(self):
        gw_pid = self.gw.pid
        self.assertError(self.req("GET", "/widgets/1"), 404, "not_found",
                         "no such path: /widgets/1")
        p = self.probe()
        r = self.wait_route("/widgets/1", 200)
        self.assertAnswer(r, 200, {"n": 1, "verbose": False, "by": "widget_service"})
        self.assertEqual(self.gw.pid, gw_pid)
        self.assertTrue(self.gw.alive())
        # the service stops: until the catalog notices, a call finds no
        # responder (404), or, sent as the service exits, is lost and answered
        # at its deadline (504); never a hang past it, nor another error
        self.stop(p)
        statuses = set()

        def gone():
            r = self.req("GET", "/widgets/1", headers={"X-Timeout": "2"}, timeout=10)
            statuses.add(r.status)
            return r.json() == no_such_path("/widgets/1")

        harness.wait_for(gone, 20, interval=0.1, what="GET /widgets/1 to be no such path")
        self.assertLessEqual(statuses, {404, 504}, statuses)
        # and comes back with a new instance
        self.probe()
        self.wait_route("/widgets/2", 200)

    def test_the_first_service_keeps_a_contested_route(self):
        first = self.probe("widget_service")
        self.wait_route("/widgets/1", 200)
        # alpha_widgets sorts first by name, but came later: it loses
        second = self.probe("alpha_widgets")
        want = ["alpha_widgets.%s declares %s, which widget_service.%s serves already" % (m, rule, m)
                for m, rule in sorted([
                    ("drop_widget", "DELETE /widgets/{n} 204"), ("echo", "GET /echo/{text}"),
                    ("echo", "POST /echo/{text}"), ("get_widget", "GET /widgets/{n}"),
                    ("list_things", "GET /things"), ("lost_widget", "GET /widgets/{n}/lost"),
                    ("make_widget", "POST /widgets 201 /widgets/{n}"),
                    ("pair", "GET /pairs/{a}/{b}"), ("slow", "GET /slow/{ms}")])]
        harness.wait_for(lambda: self.services_doc()["conflicts"] == want, 15,
                         what="the conflicts in /services")
        for _ in range(5):
            r = self.req("GET", "/widgets/1")
            self.assertAnswer(r, 200, {"n": 1, "verbose": False, "by": "widget_service"})
        log = self.gw.log_text()
        for msg in want:
            self.assertEqual(log.count("REST route conflict: " + msg), 1, msg)
        # the first one goes: the route moves to the other, the conflict ends
        self.stop(first)

        def moved():
            r = self.req("GET", "/widgets/1", headers={"X-Timeout": "2"}, timeout=10)
            return r.status == 200 and r.json()["by"] == "alpha_widgets"

        harness.wait_for(moved, 20, interval=0.1, what="/widgets/1 served by alpha_widgets")
        harness.wait_for(lambda: self.services_doc()["conflicts"] == [], 15,
                         what="no conflicts left")
        self.stop(second)

    def test_service_killed_mid_call(self):
        p = self.probe()
        self.wait_route("/widgets/1", 200)
        results = []

        def call():
            results.append(self.req("GET", "/slow/60000", headers={"X-Timeout": "2"},
                                    timeout=30))

        t = threading.Thread(target=call)
        t.start()

        def in_flight():
            m = self.nc.request("$SRV.STATS.widget_service", b"", timeout=2)
            eps = json.loads(m.data)["endpoints"]
            return any(e["name"] == "slow" and e["data"]["in_flight"] >= 1 for e in eps)

        harness.wait_for(in_flight, 10, what="the slow call to reach the service")
        p.signalled = True
        p.signal(signal.SIGKILL)
        p.wait(10)
        t.join(30)
        self.assertFalse(t.is_alive())
        r = results[0]
        self.assertEqual(r.status, 504, r.describe())
        self.assertEqual(r.json()["error"]["type"], "timeout", r.describe())
        self.assertTrue(self.gw.alive())
        self.assertEqual(self.req("GET", "/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
