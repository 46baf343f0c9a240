"""A NATS cluster on loopback for the integration tests: n nats-server nodes
with routes between every pair, started through a harness.Stack (so they are
stopped with it), and the helpers the failover tests share."""

import json

import harness


def start_cluster(stack, n=3, name="nats"):
    """Starts n nodes (names name-0, name-1, ...) with a full mesh of routes
    and waits until every node routes to every other. Returns the
    harness.Nats nodes; node.url is its client URL."""
    cports = []
    while len(cports) < n:
        p = harness.free_port()
        if p not in cports:
            cports.append(p)
    nodes = []
    for i in range(n):
        routes = ", ".join("nats-route://127.0.0.1:%d" % p for j, p in enumerate(cports) if j != i)
        config = ("cluster {\n  name: nrpc-it\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n"
                  % (cports[i], routes))
        nodes.append(stack.nats(name="%s-%d" % (name, i), config=config))
    for node in nodes:
        harness.wait_for(lambda node=node: node.monitor("/routez").get("num_routes") == n - 1,
                         harness.START_TIMEOUT, what="%s routes to the %d others" % (node.name, n - 1))
    return nodes


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
