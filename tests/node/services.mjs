// services.mjs: discovers natsrpc services with the NATS service API client
// of nats.js (@nats-io/services), as any NATS tool would.
//
//   NATS_URL=nats://127.0.0.1:4222 node services.mjs [expected service] [calls made]
//
// Checks that ping, info and stats list the service with its endpoints and
// their parameters (endpoint metadata), and that stats counts at least the
// calls made. Prints what it found as JSON; exits 1 on a failed check.
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { Svcm } from "@nats-io/services";

const url = process.env.NATS_URL || "nats://127.0.0.1:4222";
const name = process.argv[2] || "greeting_service";
const calls = Number(process.argv[3] || 0);

async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const nc = await connect({ servers: url });
try {
  const client = new Svcm(nc).client({ maxWait: 1000 });

  const pings = await collect(await client.ping());
  const mine = pings.filter((p) => p.name === name);
  assert.ok(mine.length >= 1, `ping: no ${name} among ${JSON.stringify(pings)}`);
  for (const p of mine) {
    assert.equal(p.type, "io.nats.micro.v1.ping_response");
    assert.match(p.id, /^[0-9A-Za-z]{22}$/);
    assert.match(p.version, /^\d+\.\d+\.\d+/);
  }
  // The three levels: all, by name, by name and id.
  const byName = await collect(await client.ping(name));
  assert.equal(byName.length, mine.length, "ping by name");
  const byId = await collect(await client.ping(name, mine[0].id));
  assert.equal(byId.length, 1, "ping by name and id");
  assert.equal(byId[0].id, mine[0].id);

  const infos = await collect(await client.info(name));
  assert.equal(infos.length, mine.length, "one info per instance");
  const info = infos[0];
  assert.equal(info.type, "io.nats.micro.v1.info_response");
  assert.equal(typeof info.description, "string");
  assert.ok(info.endpoints.length >= 1, "endpoints");
  for (const ep of info.endpoints) {
    assert.equal(ep.subject, `${name}.${ep.name}`);
    assert.equal(ep.queue_group, "q");
    const params = JSON.parse(ep.metadata.params);
    assert.ok(Array.isArray(params), "params metadata is a JSON array");
    for (const p of params) {
      assert.equal(typeof p.name, "string");
      assert.equal(typeof p.type, "string");
      assert.equal(typeof p.required, "boolean");
    }
  }

  const stats = await collect(await client.stats(name));
  assert.equal(stats.length, mine.length, "one stats per instance");
  let requests = 0;
  for (const s of stats) {
    assert.equal(s.type, "io.nats.micro.v1.stats_response");
    assert.ok(!Number.isNaN(Date.parse(s.started)), "started is a date");
    for (const ep of s.endpoints) {
      for (const k of ["num_requests", "num_errors", "processing_time", "average_processing_time"])
        assert.ok(Number.isInteger(ep[k]) && ep[k] >= 0, `${k} of ${ep.name}`);
      assert.equal(typeof ep.last_error, "string");
      requests += ep.num_requests;
    }
  }
  assert.ok(requests >= calls, `stats count ${requests} requests, expected at least ${calls}`);

  console.log(JSON.stringify({
    instances: mine.map((p) => p.id),
    endpoints: info.endpoints.map((e) => ({ name: e.name, params: JSON.parse(e.metadata.params) })),
    requests,
  }));
} finally {
  await nc.close();
}
