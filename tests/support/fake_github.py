"""A fake of the GitHub REST API's organization repositories, for the
github_source tests: paging through Link headers, rate limiting, a slow
endpoint and a few broken ones. Listens on 127.0.0.1 only.

    python3 fake_github.py PORT        (prints "ready" when listening)

Organizations:
    paged      250 repositories, 100 a page, three pages linked with rel="next"
    small      2 repositories, one page
    limited    403 with Retry-After: 42 (GitHub's secondary rate limit)
    limited429 429 with Retry-After: 7
    exhausted  403 with X-RateLimit-Remaining: 0 and no Retry-After
    slow       answers after 3 s
    slowish    answers after 0.5 s (for many calls at once)
    huge       a page of 17 MiB
    loop       redirects to itself forever
    elsewhere  a next link to another server
    notjson    200 with a body that is not JSON
    anything else: 404

Every request's headers are kept; GET /_requests returns them as JSON (and
clears them)."""

import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

REQUESTS = []
LOCK = threading.Lock()


def repo(i):
    return {"id": i, "name": "repo%03d" % i, "full_name": "paged/repo%03d" % i,
            "updated_at": "2026-01-%02dT00:00:00Z" % (i % 28 + 1), "private": False}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test reads /_requests
        pass

    def send(self, status, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/_requests":
            with LOCK:
                out = list(REQUESTS)
                REQUESTS.clear()
            self.send(200, out)
            return
        with LOCK:
            REQUESTS.append({"path": self.path, "headers": dict(self.headers.items())})
        parts = u.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "orgs" or parts[2] != "repos":
            self.send(404, {"message": "Not Found"})
            return
        org = parts[1]
        page = int(parse_qs(u.query).get("page", ["1"])[0])
        base = "http://%s:%d" % self.server.server_address[:2]
        if org == "paged":
            first = (page - 1) * 100
            items = [repo(i) for i in range(first, min(first + 100, 250))]
            headers = {}
            if page < 3:
                headers["Link"] = ('<%s/orgs/paged/repos?per_page=100&page=%d>; rel="next", '
                                   '<%s/orgs/paged/repos?per_page=100&page=3>; rel="last"'
                                   % (base, page + 1, base))
            self.send(200, items, headers)
        elif org == "small":
            self.send(200, [{"full_name": "small/a", "updated_at": "2026-02-01T00:00:00Z"},
                            {"full_name": "small/b", "updated_at": "2026-03-01T00:00:00Z"}])
        elif org == "limited":
            self.send(403, {"message": "You have exceeded a secondary rate limit"},
                      {"Retry-After": "42"})
        elif org == "limited429":
            self.send(429, {"message": "Too Many Requests"}, {"Retry-After": "7"})
        elif org == "exhausted":
            self.send(403, {"message": "API rate limit exceeded"},
                      {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1893456000"})
        elif org == "slow":
            time.sleep(3)
            self.send(200, [])
        elif org == "slowish":
            time.sleep(0.5)
            self.send(200, [{"full_name": "slowish/a", "updated_at": "2026-02-01T00:00:00Z"}])
        elif org == "huge":
            self.send(200, b"[" + b" " * (17 << 20) + b"]")
        elif org == "loop":
            self.send(302, {}, {"Location": "%s/orgs/loop/repos" % base})
        elif org == "elsewhere":
            self.send(200, [], {"Link": '<http://127.0.0.2:1/orgs/x/repos?page=2>; rel="next"'})
        elif org == "notjson":
            self.send(200, b"<html>oops</html>")
        else:
            self.send(404, {"message": "Not Found"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096  # many calls at once connect together


def main():
    srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    # SIGTERM ends it cleanly (exit 0), as the harness expects of its processes.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
