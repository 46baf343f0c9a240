"""Shared helpers for the integration tests.

Everything runs on 127.0.0.1 with ports picked by the kernel. Binaries come
from $NRPC_BIN_DIR (CMake passes <build>/bin), nats-server from $PATH.

Contents:
  free_port()            a free TCP port on 127.0.0.1, never the same one twice
  Proc                   a child process with its own log file, stopped by PID
  Stack                  owns a temp dir and every process a test module starts
  NatsClient             a small NATS protocol client (PUB/HPUB/SUB/MSG/HMSG)
  Responder              a NATS responder on a thread of its own (floods, raw answers)
  http_call()            one HTTP request on its own connection
  services_listed()      the service names of GET /services after a fresh gather
  openapi_examples()     the example body of every rpc in the gateway's /openapi.json
  IntegrationCase        unittest.TestCase base that prints log tails on failure
  start_postgres()       a private PostgreSQL (initdb in a temp dir), stopped by PID
  js_api(), js_messages(), js_publish()   JetStream through its API subjects
  CliMixin               run_cli()/assertExit() for tests of the natsrpc command-line client

Logs go to a temp dir per module, removed afterwards unless something failed
at teardown or NRPC_KEEP_LOGS=1 is set. Run one module by hand with:
  NRPC_BIN_DIR=build/bin python3 -m unittest -v test_gateway   (in this dir)
"""

import atexit
import http.client
import itertools
import json
import os
import queue
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.environ.get("NRPC_BIN_DIR") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "bin"))

# NRPC_MAX_SUBJECT in natsrpc.h: the longest subject natsrpc forwards.
MAX_SUBJECT = 256

# Every wait in the suite is bounded by one of these.
START_TIMEOUT = 20.0  # a process becomes ready
STOP_TIMEOUT = 10.0   # SIGTERM -> exit, before SIGKILL


def binary(name):
    """Absolute path of a binary of ours. Missing is a failure when
    NRPC_BIN_DIR is set (CTest sets it), a skip when run by hand without it."""
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        msg = "%s not built (looked in %s)" % (name, BIN_DIR)
        if os.environ.get("NRPC_BIN_DIR"):
            raise AssertionError(msg)
        raise unittest.SkipTest(msg + "; set NRPC_BIN_DIR")
    return path


def nats_server_path():
    path = shutil.which("nats-server")
    if path is None:
        raise unittest.SkipTest("nats-server not found on PATH")
    return path


def _kernel_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_handed_out = set()
_handed_out_lock = threading.Lock()


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago and that this
    process has never handed out before. A server stopped for a while keeps
    its port (a Postgres started again later on the same port), and the
    kernel would give that free port to the next caller."""
    with _handed_out_lock:
        for _ in range(1000):
            port = _kernel_port()
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise AssertionError("no port on 127.0.0.1 that was not handed out already")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(cond, timeout, interval=0.05, what="condition"):
    """Polls cond() until it returns a true value; returns it or raises
    AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except AssertionError:
            raise  # a probe saw something that will not get better (a dead process)
        except Exception as e:  # noqa: BLE001 - a probe may fail while starting up
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


def rand_token(n=12):
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


# ---------------------------------------------------------------------------
# Processes


class Proc:
    """A child process whose stdout and stderr go to <logdir>/<name>.log.

    Stopped only through its own PID: SIGTERM, wait, then SIGKILL."""

    def __init__(self, name, argv, env=None, logdir=None):
        self.name = name
        self.argv = list(argv)
        self.logdir = logdir or tempfile.mkdtemp(prefix="nrpc-it-")
        self.log_path = os.path.join(self.logdir, name + ".log")
        full_env = dict(os.environ)
        if env:
            full_env.update({k: str(v) for k, v in env.items()})
        self.env = full_env
        self.popen = None
        self._log = None
        self.kind = "app"
        self.signalled = False  # a test signalled it and checks its exit itself

    def start(self):
        self._log = open(self.log_path, "ab")
        self._log.write(("=== start: %s\n" % " ".join(self.argv)).encode())
        self._log.flush()
        self.popen = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self):
        return None if self.popen is None else self.popen.poll()

    def signal(self, sig):
        self.signalled = True
        if self.alive():
            os.kill(self.popen.pid, sig)

    def wait(self, timeout):
        """Exit status, or None if still running after timeout."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                try:
                    os.kill(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.popen.returncode

    def threads(self):
        """Threads: from /proc/<pid>/status."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise AssertionError("no Threads: line for pid %d" % self.pid)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        text = self.log_text().splitlines()
        status = "running" if self.alive() else "exited %s" % (self.returncode,)
        return "--- %s (pid %s, %s) log tail: %s\n%s" % (
            self.name, self.popen.pid if self.popen else "-", status, self.log_path,
            "\n".join(text[-lines:]))


class Nats:
    """A nats-server on 127.0.0.1 with its monitoring port. config, if given,
    is the text of a configuration file for settings that have no flag (such
    as max_control_line); the flags for address and ports still apply."""

    def __init__(self, stack, port=None, name="nats-server", config=None, args=()):
        self.stack = stack
        self.args = list(args)  # more flags (a cluster's routes: see cluster.py)
        self.auto_port = port is None
        self.port = port or free_port()
        self.mport = self._other_port(self.port)
        self.name = name
        self.config = config
        self.proc = None
        self.started = False
        self.store_dir = tempfile.mkdtemp(prefix="js-", dir=stack.dir)

    @staticmethod
    def _other_port(port):
        while True:
            p = free_port()
            if p != port:
                return p

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self):
        """Starts (or restarts, on the same ports) and waits until both ports
        accept. A first start on kernel-picked ports retries on new ones if
        another test took them in the meantime."""
        for attempt in range(3):
            # JetStream, its store kept across restarts of this server
            argv = [nats_server_path(), "-a", "127.0.0.1", "-p", str(self.port),
                    "-m", str(self.mport), "-js", "-sd", self.store_dir]
            if self.config is None:
                argv += ["-n", "nrpc-it-%d" % self.port]
            else:
                argv += ["-c", self._write_config()]
            argv += self.args
            self.proc = self.stack.spawn(self.name, argv, kind="nats")
            try:
                wait_for(lambda: (port_open(self.port) and port_open(self.mport)) or self._check_alive(),
                         START_TIMEOUT, what="nats-server on ports %d, %d" % (self.port, self.mport))
                self.started = True
                return self
            except AssertionError:
                if self.started or not self.auto_port or attempt == 2:
                    raise
                self.port = free_port()
                self.mport = self._other_port(self.port)
        return self

    def _write_config(self):
        # The name lives in the file: a reload would refuse a name that only
        # the command line gave.
        path = os.path.join(self.stack.dir, self.name + ".conf")
        with open(path, "w") as f:
            f.write("server_name: nrpc-it-%d\n%s" % (self.port, self.config))
        return path

    def reload(self, config):
        """Rewrites the configuration file with config and has the server
        reload it (SIGHUP), as an operator would."""
        self.config = config
        self._write_config()
        os.kill(self.proc.pid, signal.SIGHUP)

    def _check_alive(self):
        if not self.proc.alive():
            raise AssertionError("nats-server exited early\n" + self.proc.log_tail())
        return False

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            # the port must be free before a restart on it
            wait_for(lambda: not port_open(self.port), 10, what="port %d released" % self.port)

    def monitor(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.mport, path), timeout=5) as r:
            return json.loads(r.read().decode())

    def connections_subscribed(self, subject):
        """Connections (connz entries) that hold a subscription on subject."""
        out = []
        for c in self.monitor("/connz?subs=detail&limit=1024").get("connections") or []:
            for s in c.get("subscriptions_list_detail") or []:
                if s.get("subject") == subject:
                    out.append(c)
                    break
        return out

    def wait_subscribers(self, subject, count, timeout=START_TIMEOUT):
        """Waits until exactly count connections subscribe to subject."""
        wait_for(lambda: len(self.connections_subscribed(subject)) == count, timeout,
                 what="%d subscriber(s) on %r" % (count, subject))


class Stack:
    """Everything one test module starts: a temp dir for logs and the processes.
    stop_all() stops them by PID, services and gateways before NATS."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix="nrpc-it-%s-" % prefix)
        self.procs = []
        self.keep_logs = False
        self.postgreses = []

    def spawn(self, name, argv, env=None, kind="app"):
        # unique log file name per process
        used = {p.name for p in self.procs}
        base, n = name, 1
        while name in used:
            n += 1
            name = "%s-%d" % (base, n)
        p = Proc(name, argv, env=env, logdir=self.dir)
        p.kind = kind
        p.start()
        self.procs.append(p)
        return p

    def adopt(self, proc):
        """Adds a process started elsewhere (a Postgres) under a unique log
        name, so that stop_all() stops it and log_tails() shows it."""
        used = {p.name for p in self.procs}
        base, n = proc.name, 1
        while proc.name in used:
            n += 1
            proc.name = "%s-%d" % (base, n)
            proc.log_path = os.path.join(proc.logdir, proc.name + ".log")
        self.procs.append(proc)
        return proc

    def postgres(self, port=None, name="postgres"):
        return start_postgres(self, port=port, name=name)

    def nats(self, port=None, name="nats-server", config=None):
        return Nats(self, port=port, name=name, config=config).start()

    def service(self, binary_name, nats, env=None, ready_subject=None, replicas_expected=None,
                args=()):
        """Starts a service binary with NATS_URL and waits until it subscribes
        ready_subject (defaults per binary), checked on the server's monitor.
        replicas_expected: how many connections must hold that subscription
        when ready (default: one more than before)."""
        path = binary(binary_name)
        if ready_subject is None:
            ready_subject = {"greeting_service": "greeting_service.hello",
                             "test_faulty_service": "faulty_service.fail"}.get(binary_name)
        before = len(nats.connections_subscribed(ready_subject)) if ready_subject else 0
        e = {"NATS_URL": nats.url}
        if env:
            e.update(env)
        p = self.spawn(binary_name, [path] + list(args), env=e)
        if ready_subject:
            want = replicas_expected if replicas_expected is not None else before + 1
            try:
                wait_for(lambda: self._ready(p, nats, ready_subject, want), START_TIMEOUT,
                         what="%s subscribed to %s" % (binary_name, ready_subject))
            except AssertionError as e2:
                raise AssertionError("%s\n%s" % (e2, p.log_tail())) from None
        return p

    @staticmethod
    def _ready(p, nats, subject, want):
        if not p.alive():
            raise AssertionError("%s exited with %s before it was ready" % (p.name, p.returncode))
        return len(nats.connections_subscribed(subject)) >= want

    def gateway(self, nats, port=None, env=None):
        """Starts natsrpc-gateway and waits for GET /healthz 200. Returns
        (proc, port)."""
        path = binary("natsrpc-gateway")
        auto = port is None
        for attempt in range(3):
            port = port or free_port()
            e = {"NATS_URL": nats.url, "GATEWAY_PORT": port, "GATEWAY_HOST": "127.0.0.1"}
            if env:
                e.update(env)
            p = self.spawn("natsrpc-gateway", [path], env=e)

            def healthy():
                if not p.alive():
                    raise AssertionError("gateway exited with %s" % p.returncode)
                return http_call(port, "GET", "/healthz", timeout=2).status == 200

            try:
                wait_for(healthy, START_TIMEOUT, what="gateway /healthz 200 on port %d" % port)
                return p, port
            except AssertionError as e2:
                if p.alive() or not auto or attempt == 2:
                    raise AssertionError("%s\n%s" % (e2, p.log_tail())) from None
                p.signalled = True  # a port clash: try another port
                port = None
        raise AssertionError("unreachable")

    def log_tails(self, lines=40):
        return "\n".join(p.log_tail(lines) for p in self.procs)

    def stop_all(self):
        """Stops everything; returns a list of problems with our own processes:
        one that died by itself, did not exit 0 on SIGTERM, or logged a
        sanitizer report."""
        problems = []
        # services and gateways first, while NATS is still there to drain to
        # then PostgreSQL (its clients are gone: a quick shutdown)
        order = [p for p in reversed(self.procs) if p.kind not in ("nats", "postgres")]
        order += [p for p in reversed(self.procs) if p.kind == "postgres"]
        order += [p for p in reversed(self.procs) if p.kind == "nats"]
        for p in order:
            was_alive = p.alive()
            try:
                rc = p.stop()
            except Exception as e:  # noqa: BLE001
                problems.append("stopping %s: %r" % (p.name, e))
                continue
            if p.kind in ("nats", "postgres"):
                continue
            if not was_alive and not p.signalled:
                problems.append("%s exited by itself with status %s during the tests" % (p.name, rc))
            elif was_alive and rc != 0:
                problems.append("%s: expected exit status 0 after SIGTERM, got %s" % (p.name, rc))
            text = p.log_text()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in text:
                    problems.append("%s logged a sanitizer report (%r)" % (p.name, marker))
        for pg in self.postgreses:
            pg.close()  # data dirs go whatever happens
        self.postgreses = []
        if problems:
            self.keep_logs = True
            problems.append("logs kept in " + self.dir)
            problems.append(self.log_tails(60))
        if not self.keep_logs and not os.environ.get("NRPC_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems


# ---------------------------------------------------------------------------
# A private PostgreSQL (initdb in a temp dir, postgres as our child process).

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin",)


def pg_bin(name):
    """Path of a PostgreSQL server binary: $NRPC_PG_BIN, the Debian folder of
    version 15 (or any other installed version), else $PATH. A skip when
    there is none."""
    dirs = [os.environ["NRPC_PG_BIN"]] if os.environ.get("NRPC_PG_BIN") else []
    dirs += list(PG_BIN_DIRS)
    dirs += sorted((os.path.join("/usr/lib/postgresql", v, "bin")
                    for v in (os.listdir("/usr/lib/postgresql")
                              if os.path.isdir("/usr/lib/postgresql") else [])), reverse=True)
    for d in dirs:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    p = shutil.which(name)
    if p is None:
        raise unittest.SkipTest("PostgreSQL's %s not found (apt-get install postgresql)" % name)
    return p


class _PgProc(Proc):
    """The postmaster: runs as the `postgres` system user when we are root
    (initdb and postgres refuse to run as root); stopped with SIGINT (fast
    shutdown: clients are disconnected, the data is checkpointed)."""

    def __init__(self, name, argv, env=None, logdir=None, user=None):
        super().__init__(name, argv, env=env, logdir=logdir)
        self.user = user
        self.kind = "postgres"

    def start(self):
        self._log = open(self.log_path, "ab")
        self._log.write(("=== start: %s\n" % " ".join(self.argv)).encode())
        self._log.flush()
        kw = {}
        if self.user:
            kw = {"user": self.user, "group": self.user, "extra_groups": []}
        self.popen = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT, **kw)
        return self

    def stop(self, timeout=30.0):
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                # immediate shutdown (the backends exit too), then the hammer
                try:
                    os.kill(self.popen.pid, signal.SIGQUIT)
                except ProcessLookupError:
                    pass
                if self.wait(10) is None:
                    try:
                        os.kill(self.popen.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.popen.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.popen.returncode


class Postgres:
    """A PostgreSQL server of our own on 127.0.0.1:<port>, trust auth, user
    and database `natsrpc`, fsync off. Its data folder is a temp dir removed
    by close() (Stack.stop_all calls it; so does interpreter exit).

      url        postgresql://natsrpc@127.0.0.1:<port>/natsrpc
      start()    starts (or restarts on the same port and data) and waits
                 until it answers queries
      stop()     fast shutdown (SIGINT) and wait; the data stays
      pid        the postmaster's PID (None when stopped)
      psql(sql)  runs SQL with psql, returns its unaligned output
      create_database(name), url_for(name)
    """

    USER = "natsrpc"
    DB = "natsrpc"

    def __init__(self, stack=None, port=None, name="postgres"):
        self.stack = stack
        self.name = name
        self.auto_port = port is None
        self.port = port or free_port()
        self.run_as = None
        if os.geteuid() == 0:
            self.run_as = os.environ.get("NRPC_PG_USER", "postgres")
        self.dir = tempfile.mkdtemp(prefix="nrpc-pg-")
        self.data = os.path.join(self.dir, "data")
        self.logdir = stack.dir if stack is not None else self.dir
        self.proc = None
        self.started = False
        self.closed = False
        self.env = dict(os.environ, LC_ALL="C", LANG="C", TZ="UTC")
        self.env.pop("PGDATA", None)
        if self.run_as:
            import pwd
            try:
                pw = pwd.getpwnam(self.run_as)
            except KeyError:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise unittest.SkipTest("running as root and there is no %r user for PostgreSQL"
                                        % self.run_as) from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.env["HOME"] = self.dir
        _PG_ALIVE.add(self)
        self._initdb()

    @property
    def url(self):
        return self.url_for(self.DB)

    def url_for(self, db):
        return "postgresql://%s@127.0.0.1:%d/%s" % (self.USER, self.port, db)

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None and self.proc.alive() else None

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def _run_as_user(self, argv, **kw):
        if self.run_as:
            kw.update(user=self.run_as, group=self.run_as, extra_groups=[])
        return subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)

    def _initdb(self):
        r = self._run_as_user([pg_bin("initdb"), "-D", self.data, "-U", self.USER, "--auth=trust",
                               "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"],
                              timeout=120)
        if r.returncode != 0:
            out = r.stdout.decode(errors="replace")
            self.close()
            raise AssertionError("initdb failed (%d):\n%s" % (r.returncode, out))

    def start(self):
        """Starts the postmaster (same port and data dir on a restart) and
        waits until it answers; creates the database on the first start."""
        if self.closed:
            raise AssertionError("postgres: start() after close()")
        if self.alive():
            return self
        for attempt in range(3):
            argv = [pg_bin("postgres"), "-D", self.data, "-p", str(self.port), "-k", self.dir,
                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                    "-c", "max_connections=200"]
            if self.proc is None:  # one Proc (one log file) across restarts
                self.proc = _PgProc(self.name, argv, env=self.env, logdir=self.logdir,
                                    user=self.run_as)
                if self.stack is not None:
                    self.stack.adopt(self.proc)
            self.proc.argv = argv
            self.proc.start()
            try:
                wait_for(self._answers, START_TIMEOUT, interval=0.1,
                         what="postgres on port %d" % self.port)
                break
            except AssertionError:
                if self.proc.alive() or self.started or not self.auto_port or attempt == 2:
                    self.proc.stop()
                    raise AssertionError("postgres did not start\n" + self.proc.log_tail()) from None
                self.port = free_port()  # someone took the port: another one
        if not self.started:
            self.psql("CREATE DATABASE %s" % self.DB, db="postgres")
            self.started = True
        return self

    def _answers(self):
        if not self.proc.alive():
            raise AssertionError("postgres exited with %s" % self.proc.returncode)
        r = subprocess.run([pg_bin("psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", self.USER, "-d", "postgres", "-c", "SELECT 1"],
                           env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0

    def stop(self):
        """Fast shutdown by PID; waits until it exited and the port is free."""
        if self.proc is not None:
            self.proc.signalled = True
            self.proc.stop()
            wait_for(lambda: not port_open(self.port), 10, what="port %d released" % self.port)
        return self

    def psql(self, sql, db=None, timeout=30):
        """Runs sql (one or more statements) and returns psql's unaligned,
        tuples-only output, stripped. Raises AssertionError on an error."""
        r = subprocess.run([pg_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER,
                            "-d", db or self.DB, "-c", sql],
                           env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("psql %r failed (%d): %s" % (sql, r.returncode,
                                                             r.stderr.decode(errors="replace")))
        return r.stdout.decode().strip()

    def create_database(self, name):
        self.psql("CREATE DATABASE %s" % name, db="postgres")
        return self.url_for(name)

    def close(self):
        """Stops the server if running and removes the data dir."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.proc is not None and self.proc.alive():
                self.proc.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            _PG_ALIVE.discard(self)


_PG_ALIVE = set()


def _close_postgres_left():
    for pg in list(_PG_ALIVE):
        try:
            pg.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_close_postgres_left)


def start_postgres(stack=None, port=None, name="postgres"):
    """A started private PostgreSQL (see Postgres). With a stack, its log
    goes to the stack's folder and stop_all() stops it and removes its data;
    without one, call close() yourself (it also happens at exit)."""
    pg = Postgres(stack, port=port, name=name)
    if stack is not None:
        stack.postgreses.append(pg)
    try:
        return pg.start()
    except BaseException:
        pg.close()
        raise


# ---------------------------------------------------------------------------
# A small NATS client (protocol 1, headers, no_responders).


class NatsError(Exception):
    pass


class NatsTimeout(NatsError, TimeoutError):
    pass


class Msg:
    """One delivered message. status is the int code of an inline status
    header ("NATS/1.0 503" = no responders), else None."""

    __slots__ = ("subject", "sid", "reply", "headers", "data", "status", "description", "t")

    def __init__(self, subject, sid, reply, headers, data, status, description):
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.headers = headers
        self.data = data
        self.status = status
        self.description = description
        self.t = time.monotonic()

    @property
    def no_responders(self):
        return self.status == 503 and not self.data and "Nats-Service-Error-Code" not in self.headers

    def json(self):
        return json.loads(self.data.decode())

    def __iter__(self):
        # request() callers may unpack (headers, data, status)
        return iter((self.headers, self.data, self.status))

    def __repr__(self):
        return "Msg(subject=%r, status=%r, headers=%r, data=%r)" % (
            self.subject, self.status, self.headers, self.data[:300])


def parse_headers(block):
    """Parses 'NATS/1.0[ code[ text]]\\r\\nK: V\\r\\n...\\r\\n\\r\\n'.
    Returns (headers dict, status int or None, description)."""
    text = block.decode("utf-8", "replace")
    lines = text.split("\r\n")
    first = lines[0]
    if not first.startswith("NATS/1.0"):
        raise NatsError("bad header block: %r" % text)
    status, desc = None, ""
    rest = first[len("NATS/1.0"):].strip()
    if rest:
        parts = rest.split(" ", 1)
        status = int(parts[0])
        desc = parts[1] if len(parts) > 1 else ""
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers[k.strip()] = v.strip()
    return headers, status, desc


def encode_headers(headers):
    out = "NATS/1.0\r\n"
    for k, v in (headers or {}).items():
        out += "%s: %s\r\n" % (k, v)
    return (out + "\r\n").encode()


class Subscription:
    def __init__(self, client, sid, subject):
        self.client = client
        self.sid = sid
        self.subject = subject
        self.queue = queue.Queue()

    def next(self, timeout):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise NatsTimeout("no message on %r within %.2fs" % (self.subject, timeout)) from None

    def pending(self):
        """Every message received so far, without waiting."""
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    def unsubscribe(self):
        self.client.unsubscribe(self)


class NatsClient:
    """Connects on construction; a reader thread parses server messages and
    answers server PINGs. Thread-safe for publishing."""

    def __init__(self, url_or_port, timeout=5.0, name="nrpc-it"):
        if isinstance(url_or_port, int):
            host, port = "127.0.0.1", url_or_port
        else:
            hp = url_or_port.split("://", 1)[-1]
            host, _, p = hp.rpartition(":")
            port = int(p)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._wlock = threading.Lock()
        self._subs = {}
        self._sids = itertools.count(1)
        self._pongs = queue.Queue()
        self._closed = threading.Event()
        self.errors = []
        self.inbox_prefix = "_INBOX.it" + rand_token(16)
        self._buf = b""
        f = self.sock.makefile("rb")
        line = f.readline()
        f.close()
        if not line.startswith(b"INFO "):
            raise NatsError("expected INFO, got %r" % line)
        self.info = json.loads(line[5:].decode())
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "name": name, "lang": "python-it", "version": "0"}
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="nats-reader", daemon=True)
        self._reader.start()
        try:
            self._pongs.get(timeout=timeout)
        except queue.Empty:
            raise NatsError("no PONG after CONNECT (errors: %r)" % self.errors) from None

    # -- writing

    def _send(self, data):
        with self._wlock:
            self.sock.sendall(data)

    def flush(self, timeout=5.0):
        """PING and wait for the PONG: everything sent before was processed."""
        self._send(b"PING\r\n")
        try:
            self._pongs.get(timeout=timeout)
        except queue.Empty:
            raise NatsTimeout("no PONG within %.1fs" % timeout) from None

    @staticmethod
    def _to_bytes(data):
        if data is None:
            return b""
        if isinstance(data, str):
            return data.encode()
        return bytes(data)

    @classmethod
    def encode_pub(cls, subject, data, reply=None, headers=None):
        data = cls._to_bytes(data)
        r = (" " + reply) if reply else ""
        if headers is None:
            return b"PUB %s%s %d\r\n" % (subject.encode(), r.encode(), len(data)) + data + b"\r\n"
        hb = encode_headers(headers)
        return (b"HPUB %s%s %d %d\r\n" % (subject.encode(), r.encode(), len(hb), len(hb) + len(data))
                + hb + data + b"\r\n")

    def publish(self, subject, data=b"", reply=None, headers=None):
        self._send(self.encode_pub(subject, data, reply, headers))

    def publish_many(self, frames):
        """Writes pre-encoded PUB/HPUB frames (encode_pub) in one go."""
        self._send(b"".join(frames))

    def subscribe(self, subject, queue_group=None):
        sid = str(next(self._sids))
        sub = Subscription(self, sid, subject)
        self._subs[sid] = sub
        q = (" " + queue_group) if queue_group else ""
        self._send(("SUB %s%s %s\r\n" % (subject, q, sid)).encode())
        return sub

    def unsubscribe(self, sub):
        self._send(("UNSUB %s\r\n" % sub.sid).encode())
        self._subs.pop(sub.sid, None)

    def new_inbox(self):
        return "%s.%s" % (self.inbox_prefix, rand_token(10))

    def request(self, subject, data=b"", headers=None, timeout=5.0):
        """Sends one request and returns the first reply (a Msg; unpacks as
        (headers, data, status)). Raises NatsTimeout when nothing comes."""
        inbox = self.new_inbox()
        sub = self.subscribe(inbox)
        try:
            self.publish(subject, data, reply=inbox, headers=headers)
            return sub.next(timeout)
        finally:
            self.unsubscribe(sub)

    def request_sub(self, subject, data=b"", headers=None):
        """Sends a request and returns the reply subscription, still open, so
        the caller can look for more than one reply."""
        inbox = self.new_inbox()
        sub = self.subscribe(inbox)
        self.publish(subject, data, reply=inbox, headers=headers)
        return sub

    def pipeline_requests(self, subject, payloads, headers=None):
        """Publishes one request per payload, each with its own reply subject
        <prefix>.<i>, all in one write, and returns (subscription on
        <prefix>.*, list of reply subjects). The subscription is flushed
        before anything is sent."""
        prefix = self.new_inbox()
        sub = self.subscribe(prefix + ".*")
        self.flush()
        replies = ["%s.%d" % (prefix, i) for i in range(len(payloads))]
        frames = [self.encode_pub(subject, p, reply=r, headers=headers)
                  for p, r in zip(payloads, replies)]
        self.publish_many(frames)
        return sub, replies

    def close(self):
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(timeout=5)

    @property
    def closed(self):
        return self._closed.is_set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reading

    def _read_exact_line(self):
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                line = self._buf[:i]
                self._buf = self._buf[i + 2:]
                return line
            self._fill()

    def _read_n(self, n):
        while len(self._buf) < n:
            self._fill()
        out = self._buf[:n]
        self._buf = self._buf[n:]
        return out

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("connection closed by server")
        self._buf += chunk

    def _read_loop(self):
        try:
            while not self._closed.is_set():
                line = self._read_exact_line()
                op = line.split(b" ", 1)[0].upper()
                if op == b"MSG":
                    # MSG <subject> <sid> [reply] <#bytes>
                    parts = line.decode().split()
                    subject, sid = parts[1], parts[2]
                    reply = parts[3] if len(parts) == 5 else None
                    n = int(parts[-1])
                    data = self._read_n(n + 2)[:-2]
                    self._deliver(Msg(subject, sid, reply, {}, data, None, ""))
                elif op == b"HMSG":
                    # HMSG <subject> <sid> [reply] <#hdr> <#total>
                    parts = line.decode().split()
                    subject, sid = parts[1], parts[2]
                    reply = parts[3] if len(parts) == 6 else None
                    hlen, total = int(parts[-2]), int(parts[-1])
                    payload = self._read_n(total + 2)[:-2]
                    headers, status, desc = parse_headers(payload[:hlen])
                    self._deliver(Msg(subject, sid, reply, headers, payload[hlen:], status, desc))
                elif op == b"PING":
                    self._send(b"PONG\r\n")
                elif op == b"PONG":
                    self._pongs.put(True)
                elif op == b"+OK" or op == b"INFO":
                    pass
                elif op == b"-ERR":
                    self.errors.append(line.decode(errors="replace"))
                else:
                    self.errors.append("unexpected: %r" % line)
        except (OSError, EOFError, ValueError) as e:
            if not self._closed.is_set():
                self.errors.append("reader stopped: %r" % (e,))
        finally:
            self._closed.set()

    def _deliver(self, msg):
        sub = self._subs.get(msg.sid)
        if sub is not None:
            sub.queue.put(msg)


# ---------------------------------------------------------------------------
# JetStream, through its API subjects ($JS.API.*)


def js_api(nc, what, req=None, timeout=5.0):
    """One JetStream API request ($JS.API.<what>); returns the JSON answer."""
    m = nc.request("$JS.API." + what, b"" if req is None else json.dumps(req), timeout=timeout)
    if m.no_responders:
        raise AssertionError("no JetStream (is nats-server running with -js?)")
    return m.json()


def js_messages(nc, stream, subject=None):
    """Every message of stream (only subject's, with a filter; wildcards
    allowed), oldest first, as (seq, subject, headers, data) tuples."""
    info = js_api(nc, "STREAM.INFO." + stream)
    if "error" in info:
        raise AssertionError("stream %s: %r" % (stream, info["error"]))
    out, seq, last = [], info["state"]["first_seq"], info["state"]["last_seq"]
    import base64
    while seq and seq <= last:
        req = {"seq": seq}
        if subject:
            req = {"seq": seq, "next_by_subj": subject}
        r = js_api(nc, "STREAM.MSG.GET." + stream, req)
        if "error" in r:
            break  # nothing more (after the last match)
        m = r["message"]
        hdrs = {}
        if m.get("hdrs"):
            hdrs, _, _ = parse_headers(base64.b64decode(m["hdrs"]))
        data = base64.b64decode(m.get("data") or b"")
        out.append((m["seq"], m["subject"], hdrs, data))
        seq = m["seq"] + 1
    return out


def js_publish(nc, subject, data, msg_id=None, timeout=5.0):
    """A JetStream publish (a request answered by the stream): returns the
    PubAck JSON, or raises when no stream takes the subject."""
    m = nc.request(subject, data, headers={"Nats-Msg-Id": msg_id} if msg_id else None,
                   timeout=timeout)
    if m.no_responders:
        raise AssertionError("no stream takes %s" % subject)
    return m.json()


# ---------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, headers, body, elapsed, method, path, req_body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body
        self.elapsed = elapsed
        self.method = method
        self.path = path
        self.req_body = req_body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.text)
        except ValueError:
            raise AssertionError("response body is not JSON: %s" % self.describe()) from None

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def describe(self):
        rb = self.req_body
        if isinstance(rb, (bytes, bytearray)) and len(rb) > 200:
            rb = "<%d bytes>" % len(rb)
        return "%s %s body=%r -> %s %s %r (%.3fs)" % (
            self.method, self.path, rb, self.status,
            self.headers.get("Content-Type") if self.headers else None, self.text[:500],
            self.elapsed)


def http_call(port, method, path, body=None, headers=None, timeout=30.0):
    """One request on a fresh connection. body may be str or bytes. A server
    that answers before reading the whole body (413) is tolerated."""
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        hdrs = dict(headers or {})
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse a big body early; read its answer
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.headers, data, time.monotonic() - t0, method, path, body)
    finally:
        conn.close()


class Responder:
    """Answers every message on subject from a thread of its own, on a
    connection of its own: answer(responder, msg) returns the reply (bytes
    or str, sent to msg.reply), a list of encode_pub frames to send at once
    (a flood), or None; responder.count is the number of this message (1,
    2, ...). A context manager: stops and closes on exit."""

    def __init__(self, url, subject, answer):
        self.nc = NatsClient(url)
        self.sub = self.nc.subscribe(subject)
        self.nc.flush()
        self.answer = answer
        self.count = 0  # messages answered
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                m = self.sub.next(0.2)
            except NatsTimeout:
                continue
            self.count += 1
            out = self.answer(self, m)
            if isinstance(out, (bytes, str)):
                self.nc.publish(m.reply, out)
            elif out:
                self.nc.publish_many(out)

    def close(self):
        self._stop = True
        self._thread.join(5)
        self.nc.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def info_flood(nc, reply, names):
    """encode_pub frames of one $SRV.INFO reply per name (no endpoints), for
    Responder answers that flood a gather."""
    return [nc.encode_pub(reply, json.dumps({
        "type": "io.nats.micro.v1.info_response", "name": name, "id": "id-" + name,
        "version": "1.0.0", "metadata": {}, "endpoints": []})) for name in names]


def nats_error(m):
    """(code, type, message) of an error reply over NATS, or None for a
    result."""
    code = m.headers.get("Nats-Service-Error-Code")
    if code is None:
        return None
    e = json.loads(m.data)["error"]
    return int(code), e["type"], e["message"]


def services_listed(port):
    """The names GET /services lists after a fresh gather (refresh=1), in
    its order; a failure unless it answers 200."""
    r = http_call(port, "GET", "/services?refresh=1", timeout=30)
    if r.status != 200:
        raise AssertionError("GET /services?refresh=1: " + r.describe())
    return [s["name"] for s in r.json()["services"]]


def post(port, rpc, body=None, **kw):
    return http_call(port, "POST", "/" + rpc, body=body, **kw)


def openapi_examples(port):
    """{path: example request body} of every POST operation in the
    gateway's GET /openapi.json (refreshed first)."""
    r = http_call(port, "GET", "/openapi.json?refresh=1")
    if r.status != 200:
        raise AssertionError("GET /openapi.json: " + r.describe())
    return {path: item["post"]["requestBody"]["content"]["application/json"]["example"]
            for path, item in r.json()["paths"].items() if "post" in item}


# ---------------------------------------------------------------------------
# unittest glue

ERROR_TYPES = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "not_found", 413: "too_large", 500: "internal",
               503: ("unavailable", "overloaded"), 504: "timeout"}


class IntegrationCase(unittest.TestCase):
    """Base class: the module's Stack is cls.stack; on a failing test the
    log tails of every process are written to stderr."""

    stack = None

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        ok = True
        if outcome is not None:
            ok = getattr(outcome, "success", True)
            result = getattr(outcome, "result", None)
            if result is not None and ok:
                for t, _ in list(getattr(result, "failures", [])) + list(getattr(result, "errors", [])):
                    if t is self:
                        ok = False
        if not ok and self.stack is not None:
            sys.stderr.write("\n===== process logs for %s =====\n%s\n" % (self.id(), self.stack.log_tails()))

    @classmethod
    def start_stack(cls, prefix, start):
        """cls.stack = Stack(prefix), then start(stack) starts the module's
        processes; if anything fails, what was started is stopped."""
        cls.stack = Stack(prefix)
        try:
            start(cls.stack)
        except BaseException:
            cls.stack.stop_all()
            cls.stack = None
            raise

    @classmethod
    def start_greeting(cls, prefix):
        """The smallest stack, by start_stack: cls.nats (a nats-server),
        cls.svc (one greeting_service) and cls.nc (a client)."""
        def start(stack):
            cls.nats = stack.nats()
            cls.svc = stack.service("greeting_service", cls.nats)
            cls.nc = NatsClient(cls.nats.url)
        cls.start_stack(prefix, start)

    @classmethod
    def tearDownClass(cls):
        nc = cls.__dict__.get("nc")  # a NatsClient the class opened, if any
        if nc is not None:
            nc.close()
            cls.nc = None
        if cls.stack is not None:
            problems = cls.stack.stop_all()
            cls.stack = None
            if problems:
                raise AssertionError("after the tests:\n" + "\n".join(problems))

    # -- assertions with clear messages

    def assertOk(self, resp, expected_body):
        """HTTP 200, application/json, body exactly expected_body."""
        self.assertEqual(resp.status, 200, "expected 200 %r, got: %s" % (expected_body, resp.describe()))
        self.assertEqual(resp.content_type, "application/json",
                         "expected Content-Type application/json, got: %s" % resp.describe())
        self.assertEqual(resp.text, expected_body,
                         "expected body %r, got: %s" % (expected_body, resp.describe()))

    def assertHttpError(self, resp, code, etype=None, contains=None):
        """Status code == code and body {"error": {"code", "type", "message"}}."""
        self.assertEqual(resp.status, code, "expected HTTP %d, got: %s" % (code, resp.describe()))
        self.assertEqual(resp.content_type, "application/json",
                         "expected Content-Type application/json on an error, got: %s" % resp.describe())
        body = resp.json()
        self.assertErrorBody(body, code, etype, contains, resp.describe())
        return body

    def assertErrorBody(self, body, code, etype=None, contains=None, context=""):
        self.assertIsInstance(body, dict, "error body not an object: %s" % context)
        self.assertEqual(set(body.keys()), {"error"}, "error body must be {\"error\": {...}}: %s" % context)
        err = body["error"]
        self.assertIsInstance(err, dict, "error.error not an object: %s" % context)
        self.assertEqual(set(err.keys()), {"code", "type", "message"},
                         "error must have exactly code, type, message: %s" % context)
        self.assertEqual(err["code"], code, "error.code: %s" % context)
        want_type = etype or ERROR_TYPES.get(code)
        if isinstance(want_type, tuple):
            self.assertIn(err["type"], want_type, "error.type: %s" % context)
        elif want_type:
            self.assertEqual(err["type"], want_type, "error.type: %s" % context)
        self.assertIsInstance(err["message"], str, "error.message: %s" % context)
        self.assertTrue(err["message"], "error.message empty: %s" % context)
        if contains:
            self.assertIn(contains, err["message"], "error.message should name %r: %s" % (contains, context))

    def assertNatsError(self, msg, code, etype=None, contains=None, what=""):
        """A direct NATS error reply: both headers and the error body."""
        ctx = "%s -> %r" % (what, msg)
        self.assertFalse(msg.no_responders, "expected an error reply, got no responders: %s" % ctx)
        self.assertEqual(msg.headers.get("Nats-Service-Error-Code"), str(code),
                         "header Nats-Service-Error-Code: %s" % ctx)
        self.assertTrue(msg.headers.get("Nats-Service-Error"), "header Nats-Service-Error missing: %s" % ctx)
        try:
            body = msg.json()
        except ValueError:
            self.fail("error reply body is not JSON: %s" % ctx)
        self.assertErrorBody(body, code, etype, contains, ctx)
        return body

    def assertNatsOk(self, msg, expected_body, what=""):
        ctx = "%s -> %r" % (what, msg)
        self.assertNotIn("Nats-Service-Error-Code", msg.headers, "unexpected error reply: %s" % ctx)
        self.assertIsNone(msg.status, "unexpected status: %s" % ctx)
        self.assertEqual(msg.data.decode(), expected_body, "reply body: %s" % ctx)


class CliMixin:
    """For an IntegrationCase that runs the natsrpc command-line client
    (build/bin/natsrpc) against its self.nats."""

    def run_cli(self, *args, env=None, timeout=30):
        """Runs natsrpc with args (NATS_URL: self.nats, env on top); the
        result has .out, .err and .what (a description for messages)."""
        e = dict(os.environ, NATS_URL=self.nats.url)
        e.update(env or {})
        try:
            r = subprocess.run([binary("natsrpc")] + list(args), env=e, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("natsrpc %s did not exit within %d s" % (" ".join(args), timeout))
        r.out = r.stdout.decode()
        r.err = r.stderr.decode()
        r.what = "natsrpc %s -> exit %d\nstdout: %s\nstderr: %s" % (" ".join(args), r.returncode,
                                                                   r.out, r.err)
        return r

    def assertExit(self, r, code):
        self.assertEqual(r.returncode, code, r.what)
