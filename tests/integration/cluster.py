"""A NATS cluster on loopback for the tests that need more than one node:
three nats-server nodes in a full mesh of routes, with clustered JetStream,
each one a harness.Nats (so it restarts on its own ports after a kill).

    nodes = cluster.nats_cluster(stack)      # started and routed
    nodes[0].proc.signal(signal.SIGKILL); cluster.restart(nodes, 0)
"""

import json

import harness

CLUSTER_NAME = "nrpc-it"


def nats_cluster(stack, n=3):
    """Starts n nodes routed to each other and waits until every node sees
    the others and JetStream answers. Returns the harness.Nats nodes."""
    route_ports = [harness.free_port() for _ in range(n)]
    nodes = []
    for i in range(n):
        routes = ",".join("nats://127.0.0.1:%d" % p for j, p in enumerate(route_ports) if j != i)
        args = ["--cluster_name", CLUSTER_NAME, "--cluster", "nats://127.0.0.1:%d" % route_ports[i],
                "--routes", routes]
        nodes.append(harness.Nats(stack, name="nats-n%d" % (i + 1), args=args))
    for node in nodes:
        node.start()
    wait_meshed(nodes)
    return nodes


def routes_of(node):
    try:
        return node.monitor("/routez").get("num_routes", 0)
    except OSError:
        return -1


def js_ready(node):
    try:
        return node.monitor("/healthz").get("status") == "ok"
    except OSError:
        return False


def wait_meshed(nodes, timeout=harness.START_TIMEOUT):
    """Waits until every running node has a route to every other running
    node and its JetStream is healthy (a meta leader is elected)."""
    up = [n for n in nodes if n.proc is not None and n.proc.alive()]
    harness.wait_for(lambda: all(routes_of(n) >= len(up) - 1 for n in up), timeout,
                     what="%d nodes routed to each other" % len(up))
    harness.wait_for(lambda: all(js_ready(n) for n in up), timeout,
                     what="JetStream healthy on every node")


def urls(nodes, first=0):
    """A NATS_URL listing every node, starting at node first (the one a
    client connects to; the others are where it goes when that one dies)."""
    order = nodes[first:] + nodes[:first]
    return ",".join(n.url for n in order)


def rpc_in_flight(nc, service, rpc):
    """Calls of service.rpc accepted and not answered yet, summed over its
    replicas ($SRV.STATS, each endpoint's data.in_flight)."""
    inbox = nc.new_inbox()
    sub = nc.subscribe(inbox)
    total = 0
    try:
        nc.publish("$SRV.STATS." + service, b"", reply=inbox)
        while True:
            try:
                m = sub.next(0.3)
            except harness.NatsTimeout:
                break
            for ep in json.loads(m.data.decode()).get("endpoints") or []:
                if ep.get("name") == rpc:
                    total += (ep.get("data") or {}).get("in_flight", 0)
    finally:
        nc.unsubscribe(sub)
    return total
