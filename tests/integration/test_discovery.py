"""Discovery and introspection: the NATS service API of the services
($SRV.PING/INFO/STATS at all three levels, checked against the
io.nats.micro.v1 JSON schemas), and the gateway's GET /services,
/openapi.json, /docs, /metadata and /metrics, and its trace context
(traceparent and X-Request-Id, sent on to the service and logged)."""

import json
import math
import os
import re
import subprocess
import time
import unittest

import harness
import schema_check
from harness import http_call, post

TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
METRIC_RE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$')


def gather(nc, subject, wait=0.5, expect=None):
    """Scatter-gather: every reply to one request within wait seconds; with
    expect, waits up to 5 s for that many (a loaded machine is slow), then
    wait seconds more for any extra reply."""
    sub = nc.request_sub(subject)
    got = []
    try:
        if expect:
            deadline = time.monotonic() + 5
            while len(got) < expect and time.monotonic() < deadline:
                try:
                    got.append(sub.next(max(0.01, deadline - time.monotonic())))
                except harness.NatsTimeout:
                    break
        time.sleep(wait)
        got += sub.pending()
        return [m for m in got if not m.no_responders]
    finally:
        nc.unsubscribe(sub)


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if m is None:
            raise AssertionError("not a metric line: %r" % line)
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


class ServiceApiTest(harness.IntegrationCase):
    """The $SRV subjects, straight over NATS, two replicas of greeting_service."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc1 = stack.service("greeting_service", cls.nats)
            cls.svc2 = stack.service("greeting_service", cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("discovery-srv", start)

    def replies(self, subject, expect):
        msgs = gather(self.nc, subject, 0.3, expect)
        self.assertEqual(len(msgs), expect, "%s: expected %d replies, got %r" % (subject, expect, msgs))
        return [m.json() for m in msgs]

    def check_schema(self, reply, verb):
        errors = schema_check.validate(reply, schema_check.load(verb.lower() + "_response"))
        self.assertEqual(errors, [], "%s reply does not match the schema: %r" % (verb, reply))

    def test_three_levels_match_the_schemas(self):
        ids = sorted(r["id"] for r in self.replies("$SRV.PING.greeting_service", 2))
        self.assertEqual(len(set(ids)), 2, "each replica has its own id")
        for verb in ("PING", "INFO", "STATS"):
            with self.subTest(verb=verb):
                every = [r for r in self.replies("$SRV." + verb, 2)]
                by_name = self.replies("$SRV.%s.greeting_service" % verb, 2)
                by_id = self.replies("$SRV.%s.greeting_service.%s" % (verb, ids[0]), 1)
                self.assertEqual(by_id[0]["id"], ids[0])
                for r in every + by_name + by_id:
                    self.assertEqual(r["type"], "io.nats.micro.v1.%s_response" % verb.lower())
                    self.assertEqual(r["name"], "greeting_service")
                    self.check_schema(r, verb)
        # no such service, no such id: no answer at all
        self.assertEqual(gather(self.nc, "$SRV.INFO.no_such_service", 0.3), [])
        self.assertEqual(gather(self.nc, "$SRV.PING.greeting_service.NOSUCHID", 0.3), [])

    def test_discovery_is_subscribed_before_the_rpcs(self):
        # A replica must answer $SRV.INFO before its rpcs take calls: the
        # gateway decides an rpc it does not know yet after one gather, and
        # with auth on an rpc no gather lists is open to any signed-in
        # caller. nats.c numbers a connection's subscriptions in order.
        conns = self.nats.connections_subscribed("greeting_service.hello")
        self.assertEqual(len(conns), 2)
        for c in conns:
            sids = {d["subject"]: int(d["sid"]) for d in c["subscriptions_list_detail"]}
            rpcs = [sid for subj, sid in sids.items() if subj.startswith("greeting_service.")]
            srv = [sid for subj, sid in sids.items() if subj.startswith("$SRV.")]
            self.assertEqual(len(srv), 3, sids)
            self.assertLess(max(srv), min(rpcs), sids)

    def test_info_lists_endpoints_with_parameters(self):
        info = self.replies("$SRV.INFO.greeting_service", 2)[0]
        eps = {e["name"]: e for e in info["endpoints"]}
        self.assertEqual(set(eps), {"hello", "hello_sleep"})
        hello = eps["hello"]
        self.assertEqual(hello["subject"], "greeting_service.hello")
        self.assertEqual(hello["queue_group"], "q")
        md = hello["metadata"]
        self.assertEqual(md["varargs"], "false")
        self.assertEqual(md["varkw"], "false")
        self.assertEqual(md["access"], "public")
        self.assertTrue(md["description"])
        params = json.loads(md["params"])
        self.assertEqual([(p["name"], p["type"], p["required"]) for p in params],
                         [("first_name", "string", True), ("last_name", "string", False)])
        self.assertEqual(params[1]["default"], "")

    def stats_totals(self):
        total = {}
        for r in self.replies("$SRV.STATS.greeting_service", 2):
            for e in r["endpoints"]:
                t = total.setdefault(e["name"], [0, 0])
                t[0] += e["num_requests"]
                t[1] += e["num_errors"]
        return total

    def test_stats_count_the_calls(self):
        before = self.stats_totals()
        for i in range(5):
            self.assertNatsOk(self.nc.request("greeting_service.hello", '[["Bob%d"]]' % i),
                              '[["Hello, Bob%d"], {}]' % i)
        for _ in range(2):
            self.assertNatsError(self.nc.request("greeting_service.hello", "[[]]"), 400)
        after = self.stats_totals()
        self.assertEqual(after["hello"][0] - before["hello"][0], 7, "num_requests")
        self.assertEqual(after["hello"][1] - before["hello"][1], 2, "num_errors")
        self.assertEqual(after["hello_sleep"], before["hello_sleep"])
        last = [e["last_error"] for r in self.replies("$SRV.STATS.greeting_service", 2)
                for e in r["endpoints"] if e["name"] == "hello" and e["num_errors"]]
        self.assertTrue(last and all(x.startswith("400:") for x in last), last)


class StatsPercentileTest(harness.IntegrationCase):
    """$SRV.STATS p50/p90/p99 of calls of known duration (hello_sleep), on an
    instance that serves nothing else, and as `natsrpc stats` shows them."""

    # Seconds each call sleeps. By nearest rank p50 is the 5th, p90 the 9th
    # and p99 the 10th; buckets 19 % wide read them 10 to 17 % too high.
    SLEEPS = [0.1, 0.2, 0.25, 0.35, 0.4, 0.5, 0.6, 0.75, 0.9, 1.1]

    @classmethod
    def setUpClass(cls):
        cls.start_greeting("discovery-pct")

    def test_percentiles_within_5_percent(self):
        sent = []
        for i, secs in enumerate(self.SLEEPS):
            body = json.dumps([["p%d" % i], {"seconds": secs}])
            sent.append((secs, time.monotonic(), self.nc.request_sub("greeting_service.hello_sleep", body)))
        # A call took at least its sleep, and at most until its reply came.
        least, most = [], []
        for i, (secs, t0, sub) in enumerate(sent):
            try:
                msg = sub.next(10)
            finally:
                self.nc.unsubscribe(sub)
            self.assertNatsOk(msg, '[["Hello, p%d"], {}]' % i)
            least.append(secs)
            most.append(msg.t - t0)
        least.sort()
        most.sort()
        stats = self.nc.request("$SRV.STATS.greeting_service").json()
        data = [e for e in stats["endpoints"] if e["name"] == "hello_sleep"][0]["data"]
        cli = harness.binary("natsrpc")
        table = subprocess.run([cli, "stats", "greeting_service", "--server", self.nats.url],
                               capture_output=True, timeout=30).stdout.decode()
        row = [l.split() for l in table.splitlines() if l.startswith("hello_sleep ")][0]
        for q, key, col in ((0.50, "p50_ms", 5), (0.90, "p90_ms", 6), (0.99, "p99_ms", 7)):
            k = math.ceil(q * len(self.SLEEPS)) - 1
            got = data[key] / 1000.0
            with self.subTest(key=key):
                self.assertGreaterEqual(got, 0.95 * least[k], "%s %.4f s, the call took %.4f..%.4f s"
                                        % (key, got, least[k], most[k]))
                self.assertLessEqual(got, 1.05 * most[k], "%s %.4f s, the call took %.4f..%.4f s"
                                     % (key, got, least[k], most[k]))
                self.assertEqual(row[col], "%.3f" % data[key], table)


class GatewayDiscoveryTest(harness.IntegrationCase):
    """GET /services, /openapi.json, /docs, /metadata and /metrics."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("discovery-gw", start)

    def get_json(self, path):
        r = http_call(self.port, "GET", path)
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.content_type, "application/json", r.describe())
        return r.json()

    def test_services_lists_greeting_service(self):
        doc = self.get_json("/services?refresh=1")
        svcs = {s["name"]: s for s in doc["services"]}
        self.assertIn("greeting_service", svcs, doc)
        g = svcs["greeting_service"]
        self.assertEqual(g["version"], "1.0.0")
        self.assertTrue(g["description"])
        self.assertEqual(len(g["instances"]), 1)
        self.assertRegex(g["instances"][0]["id"], r"^[0-9A-Za-z]{22}$")
        eps = {e["name"]: e for e in g["endpoints"]}
        self.assertEqual(set(eps), {"hello", "hello_sleep"})
        hello = eps["hello"]
        self.assertEqual(hello["subject"], "greeting_service.hello")
        self.assertIs(hello["varargs"], False)
        self.assertIs(hello["varkw"], False)
        self.assertEqual(hello["access"], "public")
        self.assertEqual(hello["params"], [
            {"name": "first_name", "type": "string", "required": True, "description": "who to greet",
             "example": "Bob"},
            {"name": "last_name", "type": "string", "required": False, "default": "",
             "description": "family name, if any", "example": "Ross"}])
        sleep = eps["hello_sleep"]
        self.assertEqual([(p["name"], p["type"], p.get("default")) for p in sleep["params"]],
                         [("name", "string", None), ("seconds", "number", 10)])

    def test_services_answer_from_the_cache(self):
        self.get_json("/services?refresh=1")
        t0 = time.monotonic()
        stamps = {self.get_json("/services")["updated"] for _ in range(5)}
        # a gather takes 0.4 s, so five would take 2 s; cached answers share
        # their gather's time stamp (one background refresh may fall between)
        self.assertLess(time.monotonic() - t0, 1.9)
        self.assertLessEqual(len(stamps), 2)

    def test_a_new_service_shows_up(self):
        self.stack.service("test_faulty_service", self.nats)
        doc = harness.wait_for(
            lambda: (lambda d: d if "faulty_service" in {s["name"] for s in d["services"]} else None)(
                self.get_json("/services?refresh=1")), 10, what="faulty_service in /services")
        faulty = [s for s in doc["services"] if s["name"] == "faulty_service"][0]
        echo = [e for e in faulty["endpoints"] if e["name"] == "echo"][0]
        self.assertIs(echo["varargs"], True)
        self.assertIs(echo["varkw"], True)
        self.assertEqual(echo["access"], "authenticated")  # undeclared: not public
        api = self.get_json("/openapi.json")
        self.assertIn("/faulty_service.echo", api["paths"])

    def test_openapi_lists_every_running_rpc(self):
        subjects = {e["subject"] for m in gather(self.nc, "$SRV.INFO")
                    for e in m.json()["endpoints"]}
        self.assertIn("greeting_service.hello", subjects)
        # a gather that missed a slow reply is followed by another
        api = harness.wait_for(
            lambda: (lambda d: d if all("/" + x in d["paths"] for x in subjects) else None)(
                self.get_json("/openapi.json?refresh=1")), 10, what="every rpc in /openapi.json")
        self.assertEqual(api["openapi"], "3.1.0")
        self.assertEqual(api["info"]["version"], self.get_json("/metadata")["version"])
        for subject in subjects:
            with self.subTest(rpc=subject):
                op = api["paths"]["/" + subject]["post"]
                self.assertEqual(op["operationId"], subject)
                # a non-public rpc also answers 401 and 403 (with GATEWAY_AUTH)
                public = op["security"] == []
                self.assertEqual(set(op["responses"]), {"200", "400", "404", "413", "500", "503", "504"}
                                 | (set() if public else {"401", "403"}))
                self.assertEqual(public, not subject.startswith("faulty_service."), op["security"])
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                self.assertEqual(len(schema["oneOf"]), 2)
        hello = api["paths"]["/greeting_service.hello"]["post"]
        as_array, as_object = hello["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
        args, kwargs = as_array["prefixItems"]
        self.assertEqual([p["type"] for p in args["prefixItems"]], ["string", "string"])
        self.assertIs(args["items"], False)
        self.assertEqual(kwargs["properties"]["last_name"]["default"], "")
        self.assertIs(kwargs["additionalProperties"], False)
        self.assertEqual(as_object["required"], ["first_name"])
        err = api["components"]["schemas"]["Error"]
        self.assertEqual(err["properties"]["error"]["required"], ["code", "type", "message"])

    def test_docs_serves_swagger_ui(self):
        r = http_call(self.port, "GET", "/docs")
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.content_type, "text/html")
        self.assertIn("swagger-ui-bundle.js", r.text)
        init = http_call(self.port, "GET", "/docs/natsrpc-init.js")
        self.assertIn("/openapi.json", init.text)
        for bad in ("/docs/..%2F..%2Fetc%2Fpasswd", "/docs/.hidden", "/docs/a/b"):
            self.assertEqual(http_call(self.port, "GET", bad).status, 404, bad)
        docs_dir = os.path.join(harness.HERE, "..", "..", "frontend", "vendor", "swagger-ui")
        if not os.path.exists(os.path.join(docs_dir, "swagger-ui-bundle.js")):
            self.skipTest("Swagger UI is not vendored (npm ci at the repository root)")
        for name, ctype in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
            r = http_call(self.port, "GET", "/docs/" + name)
            self.assertEqual(r.status, 200, r.describe())
            self.assertEqual(r.content_type, ctype)
            self.assertGreater(len(r.body), 1000)

    def test_metadata_routes(self):
        want = None
        for path in ("/metadata", "/metadata.json", "/v1.0/metadata", "/v1.0/metadata.json"):
            with self.subTest(path=path):
                doc = self.get_json(path)
                self.assertEqual(set(doc), {"name", "version", "repository", "description",
                                            "api_version", "auth"})
                self.assertEqual(doc["name"], "natsrpc-gateway")
                self.assertRegex(doc["version"], r"^\d+\.\d+\.\d+")
                self.assertEqual(doc["api_version"], "1.0")
                self.assertEqual(doc["auth"], "none")
                want = want or doc
                self.assertEqual(doc, want)
        r = http_call(self.port, "DELETE", "/metadata")
        self.assertEqual(r.status, 405, r.describe())

    def scrape(self):
        r = http_call(self.port, "GET", "/metrics")
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.content_type, "text/plain")
        return parse_metrics(r.text)

    def test_metrics_count_calls_by_rpc_and_status(self):
        # Only rpcs of the catalog get a label of their own: let it find them.
        harness.wait_for(lambda: "greeting_service.hello" in
                         http_call(self.port, "GET", "/services?refresh=1").text,
                         10, what="the catalog to know greeting_service")
        before = self.scrape()
        for _ in range(3):
            self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')
        for _ in range(2):
            self.assertHttpError(post(self.port, "greeting_service.hello", "[[]]"), 400)
        self.assertHttpError(post(self.port, "greeting_service.no_such_rpc", "[]"), 404)
        for path in ("bad", "$SRV.PING", "a/b"):
            self.assertHttpError(post(self.port, path, "[]"), 400)
        after = self.scrape()

        def delta(name, **labels):
            return metric(after, name, **labels) - metric(before, name, **labels)

        rpc = "greeting_service.hello"
        self.assertEqual(delta("natsrpc_gateway_requests_total", rpc=rpc, status="200"), 3)
        self.assertEqual(delta("natsrpc_gateway_requests_total", rpc=rpc, status="400"), 2)
        self.assertEqual(delta("natsrpc_gateway_requests_total", rpc="greeting_service.no_such_rpc",
                               status="404"), 0)
        self.assertEqual(delta("natsrpc_gateway_requests_total", rpc="other", status="404"), 1)
        self.assertEqual(delta("natsrpc_gateway_requests_total", rpc="invalid", status="400"), 3)
        self.assertEqual(delta("natsrpc_gateway_request_duration_seconds_count", rpc=rpc), 5)
        self.assertEqual(delta("natsrpc_gateway_request_duration_seconds_bucket", rpc=rpc, le="+Inf"), 5)
        self.assertGreater(delta("natsrpc_gateway_request_duration_seconds_sum", rpc=rpc), 0)
        # buckets are cumulative
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                         if k[0] == "natsrpc_gateway_request_duration_seconds_bucket"
                         and dict(k[1])["rpc"] == rpc)
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        self.assertGreaterEqual(metric(after, "natsrpc_gateway_requests_in_flight"), 1)
        self.assertEqual(metric(after, "natsrpc_gateway_nats_connected"), 1)
        self.assertIn(("natsrpc_gateway_nats_reconnects_total", frozenset()), after)
        # pages are not rpcs
        self.assertFalse([k for k in after if dict(k[1]).get("rpc") in ("metrics", "/metrics")])

    # -- trace context

    def test_traceparent_is_kept_and_sent_to_the_service(self):
        spy = self.nc.subscribe("greeting_service.hello")  # sees every request (no queue group)
        self.nc.flush()
        try:
            trace = "4bf92f3577b34da6a3ce929d0e0e4736"
            sent = "00-%s-00f067aa0ba902b7-01" % trace
            r = post(self.port, "greeting_service.hello", "[[]]", headers={"traceparent": sent})
            self.assertHttpError(r, 400)
            m = TRACEPARENT_RE.match(r.headers.get("traceparent") or "")
            self.assertIsNotNone(m, r.headers)
            self.assertEqual(m.group(1), trace)
            self.assertNotEqual(m.group(2), "00f067aa0ba902b7", "the gateway's hop has its own span id")
            self.assertEqual(m.group(3), "01")
            self.assertEqual(r.headers.get("X-Request-Id"), trace)
            msg = spy.next(5)
            self.assertEqual(msg.headers.get("traceparent"), r.headers.get("traceparent"))
            self.assertEqual(msg.headers.get("X-Request-Id"), trace)
        finally:
            self.nc.unsubscribe(spy)
        # the gateway's line and the service's line for this call
        harness.wait_for(lambda: "request_id=%s" % trace in self.gw.log_text(), 5,
                         what="the request id in the gateway log")
        harness.wait_for(lambda: "trace=%s" % trace in self.svc.log_text(), 5,
                         what="the trace id in the service log")

    def test_request_id_is_kept(self):
        r = post(self.port, "greeting_service.hello", "[[]]", headers={"X-Request-Id": "order-42"})
        self.assertEqual(r.headers.get("X-Request-Id"), "order-42")
        self.assertIsNotNone(TRACEPARENT_RE.match(r.headers.get("traceparent") or ""))
        harness.wait_for(lambda: "request_id=order-42" in self.gw.log_text(), 5, what="gateway log")
        harness.wait_for(lambda: "request_id=order-42" in self.svc.log_text(), 5, what="service log")

    def test_new_trace_when_absent_or_invalid(self):
        seen = set()
        for headers in ({}, {"traceparent": "00-xyz"},
                        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
                        {"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},
                        {"X-Request-Id": "has space"}, {"X-Request-Id": "x" * 65}):
            with self.subTest(headers=headers):
                r = post(self.port, "greeting_service.hello", '[["Bob"]]', headers=headers)
                self.assertEqual(r.status, 200, r.describe())
                m = TRACEPARENT_RE.match(r.headers.get("traceparent") or "")
                self.assertIsNotNone(m, r.headers)
                self.assertNotIn(m.group(1), seen)
                seen.add(m.group(1))
                self.assertEqual(r.headers.get("X-Request-Id"), m.group(1))


class FloodedGatherTest(harness.IntegrationCase):
    """A responder that answers each $SRV.INFO with 6,000 replies: one gather
    takes at most 4,096 (said once in the log), the gateway stays up, and
    the pages are whole again once the flood stops."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_THREADS": "1"})
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("discovery-flood", start)

    def listed(self):
        return harness.services_listed(self.port)

    def test_a_flooded_gather_is_bounded(self):
        self.assertEqual(self.listed(), ["greeting_service"])  # the start's gather is over

        def flood(r, m):
            return harness.info_flood(r.nc, m.reply, ("flood%d" % i for i in range(6000)))
        with harness.Responder(self.nats.url, "$SRV.INFO", flood) as flooder:
            # Until a gather took the most it takes (a busy machine may
            # deliver part of the first flood late); never more.
            sizes = []
            harness.wait_for(lambda: sizes.append(len(self.listed())) or sizes[-1] == 4096, 20,
                             what="a gather full of the flood")
            gathers = flooder.count
        self.assertLessEqual(max(sizes), 4096, sizes)
        self.assertTrue(self.gw.alive(), self.gw.log_tail())
        # said once per flooded gather, not once per reply ignored
        said = self.gw.log_text().count(
            "catalog: more than 4096 $SRV.INFO replies to one gather; the rest are ignored")
        self.assertGreaterEqual(said, 1)
        self.assertLessEqual(said, gathers)
        harness.wait_for(lambda: self.listed() == ["greeting_service"], 10,
                         what="only greeting_service listed once the flood stopped")
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')


class ManyRpcsGatherTest(harness.IntegrationCase):
    """Responders that declare 48,000 rpcs, one of them renamed at every
    gather: telling the loop's client which rpcs send heartbeats walks both
    sets once (0.4 s here; 6.7 s when each step compared the whole sets)."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            stack.service("greeting_service", cls.nats)
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_THREADS": "1"})
        cls.start_stack("discovery-many-rpcs", start)

    def test_a_gather_of_many_rpcs_takes_linear_work(self):
        def answer(responder, m):
            frames = []
            for r in range(8):  # 8 replicas of "many", 6,000 rpcs each
                # Subjects alone: the pages skip endpoints without a name,
                # so the gather's work is mostly the rpc set's.
                endpoints = [{"subject": "many.e%d_%05d" % (r, j)} for j in range(6000)]
                if r == 0:  # sorts last, a new name at every gather: same count
                    endpoints.append({"subject": "many.z%06d" % responder.count})
                frames.append(responder.nc.encode_pub(m.reply, json.dumps({
                    "type": "io.nats.micro.v1.info_response", "name": "many",
                    "id": "m%d" % r, "version": "1.0.0", "metadata": {},
                    "endpoints": endpoints})))
            return frames
        took = []
        with harness.Responder(self.nats.url, "$SRV.INFO", answer):
            for _ in range(3):
                start = time.monotonic()
                r = http_call(self.port, "GET", "/services?refresh=1", timeout=120)
                took.append(time.monotonic() - start)
                self.assertEqual(r.status, 200, r.describe())
        print("\ncatalog figures: refresh gathers of 48,001 rpcs took %s s"
              % ", ".join("%.2f" % x for x in took))
        # Against the first gather (nothing to compare with: linear), so a
        # slow machine does not fail it; the quadratic walk took 6.7 s
        # against 0.4 s.
        self.assertLess(max(took[1:]), 3 * took[0] + 2.0, took)
        self.assertTrue(self.gw.alive(), self.gw.log_tail())
        self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]'), '[["Hello, Bob"], {}]')


class MetricsLabelLimitTest(harness.IntegrationCase):
    """Random rpc paths cannot grow /metrics: only rpcs of the catalog get a label."""

    LIMIT = 1000

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.gw, cls.port = stack.gateway(cls.nats, env={"GATEWAY_ACCESS_LOG": "0"})
        cls.start_stack("discovery-metrics", start)

    def test_rpc_labels_are_bounded(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            for i in range(self.LIMIT + 50):
                conn.request("POST", "/random_%d.x" % i, body=b"[]")
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 404)
        finally:
            conn.close()
        text = http_call(self.port, "GET", "/metrics").text
        rpcs = set(re.findall(r'natsrpc_gateway_requests_total\{rpc="([^"]*)"', text))
        # No service announces them: none gets a label of its own.
        self.assertEqual(rpcs - {"other", "invalid"}, set())
        m = parse_metrics(text)
        self.assertEqual(metric(m, "natsrpc_gateway_requests_total", rpc="other", status="404"),
                         self.LIMIT + 50)


class NatsGaugesTest(harness.IntegrationCase):
    """natsrpc_gateway_nats_connected and _reconnects_total across a NATS restart."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            cls.gw, cls.port = stack.gateway(cls.nats)
        cls.start_stack("discovery-nats", start)

    def gauges(self):
        m = parse_metrics(http_call(self.port, "GET", "/metrics").text)
        return (metric(m, "natsrpc_gateway_nats_connected"),
                metric(m, "natsrpc_gateway_nats_reconnects_total"))

    def test_connection_state_and_reconnects(self):
        self.assertEqual(self.gauges(), (1, 0))
        self.nats.stop()
        harness.wait_for(lambda: self.gauges()[0] == 0, 10, what="nats_connected 0")
        # /services still answers (from the cache) while NATS is down
        self.assertEqual(http_call(self.port, "GET", "/services").status, 200)
        self.nats.start()
        harness.wait_for(lambda: self.gauges() == (1, 1), 15, what="nats_connected 1, one reconnect")


if __name__ == "__main__":
    unittest.main()
