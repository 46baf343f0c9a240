"""Idempotent retries for HTTP clients: the gateway passes the
Idempotency-Key header on to the service (checked: length, characters, once),
and thing_service.create_thing uses it as its request_id when the call gives
none, so a client that got a 503 or 504 retries without creating a second
thing."""

import concurrent.futures
import http.client
import json
import time
import unittest

import harness
from harness import Response, http_call
from test_things import ThingCase, body, wait_served

PATH = "/thing_service.create_thing"
KEY = "Idempotency-Key"
ORIGIN = "http://app.example"  # a page's origin the gateway lists


def new_key():
    return "k-" + harness.rand_token(20)


class IdempotencyTest(ThingCase):
    @classmethod
    def setUpClass(cls):
        cls.start_things("idempotency", gateway_env={"GATEWAY_CORS_ORIGINS": ORIGIN})

    def count(self, where="TRUE", table="thing"):
        return int(self.pg.psql("SELECT count(*) FROM %s WHERE %s" % (table, where)))

    def create(self, name, key=None, extra=None, **kw):
        headers = {KEY: key} if key is not None else {}
        headers.update(extra or {})
        return http_call(self.port, "POST", PATH, body(name=name, **kw), headers=headers)

    def created(self, name, key=None, **kw):
        r = self.create(name, key, **kw)
        self.assertEqual(r.status, 200, r.describe())
        return r

    def uuid_of(self, r):
        return r.json()[0][0]["uuid"]

    def test_same_key_twice_is_one_thing_and_the_same_reply(self):
        key = new_key()
        total = self.count()
        first = self.created("Dora", key)
        again = self.created("Dora", key)
        self.assertEqual(again.text, first.text, "a retry gets the first reply, whole")
        self.assertEqual(self.count(), total + 1, "the retry created another thing")
        self.assertEqual(self.count("request_id = '%s'" % key, "thing_request"), 1)
        # The key names the operation: another name under it is still the first.
        self.assertEqual(self.created("Other", key).text, first.text)
        # Quoted (the IETF draft's spelling) is the same key.
        self.assertEqual(self.created("Dora", '"%s"' % key).text, first.text)
        self.assertEqual(self.count(), total + 1)

    def test_different_keys_are_different_things(self):
        total = self.count()
        a = self.created("Twin", new_key())
        b = self.created("Twin", new_key())
        self.assertNotEqual(self.uuid_of(a), self.uuid_of(b))
        # without a key nothing is deduplicated
        c, d = self.created("Twin"), self.created("Twin")
        self.assertNotEqual(self.uuid_of(c), self.uuid_of(d))
        self.assertEqual(self.count(), total + 4)

    def test_request_id_in_the_call_wins(self):
        key, rid = new_key(), "rid-" + harness.rand_token(16)
        first = self.created("Rid", key, request_id=rid)
        self.assertEqual(self.count("request_id = '%s'" % rid, "thing_request"), 1)
        self.assertEqual(self.count("request_id = '%s'" % key, "thing_request"), 0)
        # the key alone is another operation
        other = self.created("Rid", key)
        self.assertNotEqual(self.uuid_of(other), self.uuid_of(first))
        self.assertEqual(self.created("Rid", None, request_id=rid).text, first.text)

    def test_bad_keys_are_refused_and_create_nothing(self):
        total = self.count()
        for bad in ("", '""', "k" * 129, '"%s"' % ("k" * 129), "two words", "quo\"te",
                    "semi;colon", "caf\u00e9", '"unterminated', "a,b"):
            with self.subTest(key=bad):
                r = self.create("Bad", bad)
                self.assertHttpError(r, 400, "invalid_argument", KEY)
        self.assertEqual(self.count(), total)
        # the limit itself is fine
        self.created("Long", ("L" + harness.rand_token(20)).ljust(128, "k"))

    def test_repeated_key_header_is_refused(self):
        total = self.count()
        for values in ((new_key(), new_key()), ("same", "same")):
            with self.subTest(values=values):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                try:
                    data = body(name="Twice").encode()
                    conn.putrequest("POST", PATH)
                    conn.putheader("Content-Type", "application/json")
                    conn.putheader("Content-Length", str(len(data)))
                    for v in values:
                        conn.putheader(KEY, v)
                    conn.endheaders(data)
                    resp = conn.getresponse()
                    r = Response(resp.status, resp.headers, resp.read(), 0, "POST", PATH, data)
                finally:
                    conn.close()
                self.assertHttpError(r, 400, "invalid_argument", "given 2 times")
        self.assertEqual(self.count(), total)

    def test_concurrent_retries_create_one_thing(self):
        key = new_key()
        total = self.count()
        with concurrent.futures.ThreadPoolExecutor(12) as ex:
            replies = list(ex.map(lambda i: self.create("Rush", key), range(12)))
        for r in replies:
            self.assertEqual(r.status, 200, r.describe())
        self.assertEqual({r.text for r in replies}, {replies[0].text})
        self.assertEqual(self.count(), total + 1)

    def test_key_on_other_rpcs_and_other_origins(self):
        # An rpc that does not use the key ignores it; a browser's Origin
        # (one the gateway lets call, GATEWAY_CORS_ORIGINS) changes nothing:
        # the key is not a credential.
        r = http_call(self.port, "POST", "/thing_service.get_things", body(limit=1),
                      headers={KEY: new_key(), "Origin": ORIGIN})
        self.assertEqual(r.status, 200, r.describe())
        key = new_key()
        first = self.created("Origin", key, extra={"Origin": ORIGIN})
        self.assertEqual(self.created("Origin", key).text, first.text)
        # A key does not open the gateway to an origin it does not list.
        r = self.create("Origin", key, extra={"Origin": "http://evil.example"})
        self.assertEqual(r.status, 403, r.describe())

    def test_over_nats_only_a_valid_key_counts(self):
        key = new_key()
        total = self.count()
        data = body(name="Direct").encode()
        m1 = self.nc.request("thing_service.create_thing", data, headers={KEY: key})
        m2 = self.nc.request("thing_service.create_thing", data, headers={KEY: key})
        self.assertNatsOk(m2, m1.data.decode(), what="a NATS retry with the same key")
        # A key the gateway would refuse is ignored by the service: no dedup.
        bad = "two words"
        m3 = self.nc.request("thing_service.create_thing", data, headers={KEY: bad})
        m4 = self.nc.request("thing_service.create_thing", data, headers={KEY: bad})
        self.assertNotEqual(json.loads(m3.data)[0][0]["uuid"], json.loads(m4.data)[0][0]["uuid"])
        self.assertEqual(self.count(), total + 3)

    def test_retry_after_the_database_came_back(self):
        """The dependency dies mid-way: the first try gets 503, the retry
        with the same key creates the thing once, and a retry of that
        returns it again."""
        key = new_key()
        total = self.count()
        self.pg.stop()
        try:
            r = self.create("Retried", key, extra={"X-Timeout": "5"})
            self.assertIn(r.status, (503, 504), r.describe())
        finally:
            self.pg.start()
        wait_served(self.nc)
        deadline = time.monotonic() + 15
        while True:
            r = self.create("Retried", key)
            if r.status == 200 or time.monotonic() > deadline:
                break
            self.assertIn(r.status, (503, 504), r.describe())  # safe to retry
            time.sleep(0.1)
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(self.created("Retried", key).text, r.text)
        self.assertEqual(self.count(), total + 1)


if __name__ == "__main__":
    unittest.main()
