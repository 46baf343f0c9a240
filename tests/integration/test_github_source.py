"""github_source and natsrpc_http against a fake GitHub API on loopback:
paging through Link headers, rate limits, deadlines, broken answers, many
transfers at once on one loop, and the drain. The service is never pointed
at the real GitHub."""

import json
import os
import re
import signal
import sys
import time
import unittest
import urllib.request

import harness
from harness import post

FAKE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                                     "fake_github.py"))


def body(*args, **kwargs):
    return json.dumps([list(args), kwargs])


error_of = harness.nats_error


class GithubSourceTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.fake_port = harness.free_port()
            cls.fake = stack.spawn("fake_github", [sys.executable, FAKE, str(cls.fake_port)])
            harness.wait_for(lambda: harness.port_open(cls.fake_port), harness.START_TIMEOUT,
                             what="the fake GitHub API")
            cls.api = "http://127.0.0.1:%d" % cls.fake_port
            cls.nats = stack.nats()
            cls.svc = stack.service("github_source", cls.nats,
                                    env={"GITHUB_API_URL": cls.api, "GITHUB_TOKEN": "t0ken"},
                                    ready_subject="github_source.repos")
            cls.gw, cls.port = stack.gateway(cls.nats)
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("github", start)

    def fake_requests(self):
        with urllib.request.urlopen(self.api + "/_requests", timeout=5) as r:
            return json.loads(r.read())

    def repos(self, org, **kw):
        return post(self.port, "github_source.repos", body(org, **kw), timeout=30)

    def test_info_publishes_the_rest_route(self):
        m = self.nc.request("$SRV.INFO.github_source", b"", timeout=5)
        info = json.loads(m.data)
        md = info["endpoints"][0]["metadata"]
        self.assertEqual(json.loads(md["http"]), ["GET /github/{org}/repos"])

    # -- paging --------------------------------------------------------------

    def test_pages_through_link_headers(self):
        self.fake_requests()
        r = self.repos("paged")
        self.assertEqual(r.status, 200, r.describe())
        args, kwargs = r.json()
        self.assertEqual(kwargs, {})
        entities = args[0]
        self.assertEqual(len(entities), 250)
        self.assertEqual([e["_id"] for e in entities], ["paged/repo%03d" % i for i in range(250)])
        for i, e in enumerate(entities):
            want = {"id": i, "name": "repo%03d" % i, "full_name": "paged/repo%03d" % i,
                    "updated_at": "2026-01-%02dT00:00:00Z" % (i % 28 + 1), "private": False,
                    "_id": "paged/repo%03d" % i,
                    "_updated": "2026-01-%02dT00:00:00Z" % (i % 28 + 1)}
            self.assertEqual(e, want)
        seen = self.fake_requests()
        self.assertEqual([q["path"] for q in seen],
                         ["/orgs/paged/repos?per_page=100",
                          "/orgs/paged/repos?per_page=100&page=2",
                          "/orgs/paged/repos?per_page=100&page=3"])
        for q in seen:
            h = {k.lower(): v for k, v in q["headers"].items()}
            self.assertEqual(h["authorization"], "Bearer t0ken")
            self.assertEqual(h["accept"], "application/vnd.github+json")
            # the gateway's trace goes on, one span per page
            self.assertRegex(h["traceparent"], r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
            self.assertEqual(h["traceparent"][3:35], r.headers["traceparent"][3:35])
            self.assertEqual(h["x-request-id"], r.headers["X-Request-Id"])
        self.assertEqual(len({q["headers"]["traceparent"] for q in seen}), 3)

    def test_since_keeps_only_newer_repositories(self):
        r = self.repos("small", since="2026-02-15T00:00:00Z")
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.json(), [[[{"full_name": "small/b", "updated_at": "2026-03-01T00:00:00Z",
                                       "_id": "small/b", "_updated": "2026-03-01T00:00:00Z"}]],
                                    {}])

    # -- GET /github/{org}/repos ---------------------------------------------

    def rest(self, path, **kw):
        def served():
            r = harness.http_call(self.port, "GET", path, timeout=30, **kw)
            return r if r.json() != {"error": {"code": 404, "type": "not_found",
                                               "message": "no such path: " + path.split("?")[0]}} \
                else None
        return harness.wait_for(served, 15, interval=0.1, what="the route of GET " + path)

    def test_rest_route_pages_and_refuses_like_the_rpc(self):
        # the same three pages as the rpc, the entities as the body
        r = self.rest("/github/paged/repos")
        self.assertEqual((r.status, r.content_type), (200, "application/json"), r.describe())
        self.assertEqual(r.json(), self.repos("paged").json()[0][0])
        self.assertEqual(len(r.json()), 250)
        r = self.rest("/github/small/repos?since=2026-02-15T00:00:00Z")
        self.assertEqual(r.json(), [{"full_name": "small/b", "updated_at": "2026-03-01T00:00:00Z",
                                     "_id": "small/b", "_updated": "2026-03-01T00:00:00Z"}])
        r = self.rest("/github/limited/repos")
        self.assertHttpError(r, 503, "rate_limited")
        self.assertEqual(r.json()["error"]["message"],
                         "GitHub rate limit reached; retry after 42 s")
        r = self.rest("/github/slow/repos", headers={"X-Timeout": "0.5"})
        self.assertHttpError(r, 504, "timeout")
        # an org that would climb out of /orgs/<org>/ on GitHub is no route
        for org in ("..", "%2E%2E", "a%2Fb", "%00"):
            r = harness.http_call(self.port, "GET", "/github/%s/repos" % org)
            self.assertHttpError(r, 404, "not_found")
        self.assertNotIn("/orgs/../repos", [q["path"].split("?")[0] for q in self.fake_requests()])

    # -- GitHub's refusals ---------------------------------------------------

    def test_rate_limits_are_503_with_the_wait(self):
        for org, wait in (("limited", "42"), ("limited429", "7"), ("exhausted", "60")):
            r = self.repos(org)
            self.assertHttpError(r, 503, "rate_limited")
            self.assertEqual(r.json()["error"]["message"],
                             "GitHub rate limit reached; retry after %s s" % wait)

    def test_unknown_organization_is_404(self):
        r = self.repos("nobody-here")
        self.assertHttpError(r, 404, "not_found")
        self.assertEqual(r.json()["error"]["message"], "no GitHub organization 'nobody-here'")

    def test_slower_than_the_deadline_is_504(self):
        t0 = time.monotonic()
        r = post(self.port, "github_source.repos", body("slow"), headers={"X-Timeout": "0.5"})
        took = time.monotonic() - t0
        self.assertEqual(r.status, 504, r.describe())
        self.assertLess(took, 2.5)
        # the service's own answer says why, also over NATS directly
        m = self.nc.request("github_source.repos", body("slow").encode(),
                            headers={"Nrpc-Timeout-Ms": "400"}, timeout=5)
        code, etype, message = error_of(m)
        self.assertEqual((code, etype), (504, "timeout"))
        # the time left when the transfer started: 400 ms less what already passed
        left = re.search(r"within (\d+) ms", message)
        self.assertIsNotNone(left, message)
        self.assertTrue(0 < int(left.group(1)) <= 400, message)

    def test_broken_answers_are_502(self):
        cases = {"huge": "is larger than 16777216 bytes",
                 "loop": "Maximum (5) redirects followed",
                 "elsewhere": "GitHub's next page is on another server",
                 "notjson": "GitHub sent a page that is not a JSON array"}
        for org, text in cases.items():
            m = self.nc.request("github_source.repos", body(org).encode(), timeout=20)
            code, etype, message = error_of(m)
            self.assertEqual(code, 502, (org, message))
            self.assertIn(text, message, org)

    def test_bad_organization_names_are_400_and_never_asked(self):
        self.fake_requests()
        for org in ("", "a" * 40, "../admin", "a/b", "-x", "x-", "a--b", "a b", "ä"):
            r = self.repos(org)
            self.assertHttpError(r, 400, "invalid_argument", contains="argument 'org'")
        self.assertEqual(self.fake_requests(), [])

    # -- many at once, on one loop -------------------------------------------

    def test_a_thousand_transfers_at_once_add_no_threads(self):
        # one transfer first: nats.c and libcurl start what they start lazily
        m = self.nc.request("github_source.repos", body("slowish").encode(), timeout=10)
        self.assertIsNone(error_of(m), m)
        before = self.svc.threads()
        subs = [self.nc.request_sub("github_source.repos", body("slowish").encode())
                for _ in range(1000)]
        self.nc.flush()
        time.sleep(0.3)  # all in flight: the fake holds each for 0.5 s
        during = self.svc.threads()
        ok = 0
        for s in subs:
            m = s.next(30)
            s.unsubscribe()
            if error_of(m) is None:
                ok += 1
        self.assertEqual(ok, 1000)
        self.assertEqual(during, before, "threads before %d, during %d" % (before, during))

    # -- the drain -----------------------------------------------------------

    def test_drain_deadline_cancels_a_transfer_once(self):
        # a replica of its own, on a server of its own, so the slow call is its
        nats = self.stack.nats(name="nats-drain")
        svc = self.stack.service("github_source", nats,
                                 env={"GITHUB_API_URL": self.api, "NRPC_DRAIN_TIMEOUT": "1"},
                                 ready_subject="github_source.repos")
        with harness.NatsClient(nats.url) as nc:
            sub = nc.request_sub("github_source.repos", body("slow").encode())
            nc.flush()
            time.sleep(0.3)
            svc.signal(signal.SIGTERM)
            m = sub.next(10)
            sub.unsubscribe()
        self.assertEqual(error_of(m), (503, "unavailable", "the service is shutting down"))
        rc = svc.wait(10)
        svc.signalled = True
        self.assertEqual(rc, 1, svc.log_tail())
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(marker, svc.log_text())

if __name__ == "__main__":
    unittest.main()
