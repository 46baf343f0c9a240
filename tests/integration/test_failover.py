"""Failover on a real 3-node NATS cluster on loopback: kill -9 of the node a
caller is connected to fails the calls it had in flight at once, with 503
unavailable and a message that says the reply may have been lost, in the
gateway, in a service's outgoing calls (outcalls) and in the natsrpc CLI.
nats.c reconnects to another node within milliseconds; a reply the service
sends to the old node's interest is dropped by the cluster, so waiting for
the timeout (60 s by default) would be the only other outcome."""

import concurrent.futures
import json
import signal
import subprocess
import sys
import time
import unittest

import cluster
import harness
from harness import http_call, post

FAILOVER = 2.0  # seconds from the kill to the last answer (issue 11)
LOST = "the reply may have been lost"
SLEEP = 10  # hello_sleep seconds: far longer than FAILOVER, short enough to drain
GATEWAY_CALLS = 8


def sleepy(port, name):
    t = time.monotonic()
    r = http_call(port, "POST", "/greeting_service.hello_sleep?timeout=30",
                  body='[["%s", %d]]' % (name, SLEEP), timeout=40)
    return r, time.monotonic() - t


class NodeKilledTest(harness.IntegrationCase, harness.CliMixin):
    """Node A carries the gateway, a relaying service (outcalls) and a CLI
    call; greeting_service runs on node B; the relay's caller on node C."""

    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.a, cls.b, cls.c = cluster.nats_cluster(stack)
            stack.service("greeting_service", cls.b)
            cls.relay = stack.service("test_faulty_service", cls.a,
                                      ready_subject="faulty_service.relay")
            cls.gw, cls.port = stack.gateway(cls.a)
            cls.nc = harness.NatsClient(cls.c.url)
        cls.start_stack("failover", start)
        cls.nats = cls.a  # the CLI's NATS_URL (CliMixin)

    def call_ok(self):
        r = post(self.port, "greeting_service.hello", '[["Bob"]]', timeout=10)
        return r.status == 200 and r.text == '[["Hello, Bob"], {}]'

    def test_kill_of_the_callers_node_fails_calls_in_flight_at_once(self):
        # The service's interest must have reached node A.
        harness.wait_for(self.call_ok, 10, what="a hello through the gateway on node A")
        in_flight_before = cluster.rpc_in_flight(self.nc, "greeting_service", "hello_sleep")
        self.assertEqual(in_flight_before, 0)

        relay = self.nc.request_sub(
            "faulty_service.relay",
            json.dumps([["greeting_service.hello_sleep", ["Relayed", SLEEP]], {"timeout": 30}]).encode())
        cli = subprocess.Popen([harness.binary("natsrpc"), "call", "greeting_service.hello_sleep",
                                "Cli", str(SLEEP), "--timeout", "30", "--server", self.a.url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: cli.poll() is None and cli.kill())
        with concurrent.futures.ThreadPoolExecutor(GATEWAY_CALLS) as ex:
            calls = [ex.submit(sleepy, self.port, "Gw%d" % i) for i in range(GATEWAY_CALLS)]
            want = GATEWAY_CALLS + 2
            harness.wait_for(
                lambda: cluster.rpc_in_flight(self.nc, "greeting_service", "hello_sleep") == want,
                10, what="%d hello_sleep calls in flight" % want)

            killed = time.monotonic()
            self.a.proc.signal(signal.SIGKILL)

            results = [f.result() for f in calls]
            try:
                out, err = cli.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.fail("the CLI call did not end within 30 s of the kill")
            cli_took = time.monotonic() - killed
            try:
                m = relay.next(30)
            except harness.NatsTimeout:
                self.fail("the relayed call was not answered within 30 s of the kill")
            relay_took = time.monotonic() - killed
            self.nc.unsubscribe(relay)

        sys.stderr.write("\nfailover figures: %d gateway calls answered 503 %.3f s after the "
                         "kill at the latest; CLI %.3f s; outcall %.3f s\n"
                         % (len(results), time.monotonic() - killed, cli_took, relay_took))
        for r, took in results:
            self.assertHttpError(r, 503, "unavailable", LOST)
            self.assertLess(took, SLEEP, r.describe())
        last = max(t for _, t in results)
        self.assertEqual(cli.returncode, 1, (out, err))
        self.assertIn("error 503 unavailable", err.decode())
        self.assertIn(LOST, err.decode())
        self.assertNatsError(m, 503, "unavailable", LOST, what="relay of hello_sleep")
        # Every caller answered within FAILOVER of the kill (the gateway's
        # calls started before it, so their time since the kill is less
        # than their whole time).
        self.assertLess(cli_took, FAILOVER)
        self.assertLess(relay_took, FAILOVER)
        self.assertLess(time.monotonic() - killed, FAILOVER + 0.5,
                        "all answers collected; gateway calls took up to %.2f s" % last)

        # Calls sent after the reconnect are not failed: they wait for and
        # get their reply as usual.
        harness.wait_for(self.call_ok, 10, what="the gateway on another node")
        for _ in range(20):
            self.assertOk(post(self.port, "greeting_service.hello", '[["Bob"]]', timeout=10),
                          '[["Hello, Bob"], {}]')
        m = self.nc.request("faulty_service.relay",
                            b'[["greeting_service.hello", ["Again"]]]', timeout=10)
        self.assertNatsOk(m, '[["Hello, Again"], {}]', what="relay after the failover")
        r = self.run_cli("call", "greeting_service.hello", "Cli", "--server", self.b.url)
        self.assertExit(r, 0)
        self.assertEqual(r.out, '[["Hello, Cli"], {}]\n')


if __name__ == "__main__":
    unittest.main()
