// wamp_fanout.js: many WAMP sessions on one topic, with the autobahn npm
// client (no browser).
//
//   GATEWAY_URL=http://127.0.0.1:5000 NATS_MONITOR=http://127.0.0.1:8222 \
//     node tests/browser/wamp_fanout.js [SOCKETS]
//
// SOCKETS (default 200) sessions subscribe to one fresh topic; the
// gateway must hold exactly one NATS subscription for it, on events.<topic>. One more session
// publishes a single message (acknowledged); every subscriber must get it
// exactly once, the publisher not at all (exclude_me is the default). After
// the subscribers leave, the NATS subscription must be gone. Exits 0 when
// all of that held.
"use strict";

const http = require("http");
const autobahn = require("autobahn");

// autobahn prints every close with console.log: keep ours, drop its.
const say = console.log.bind(console);
console.log = () => {};

const GATEWAY_URL = process.env.GATEWAY_URL;
const NATS_MONITOR = process.env.NATS_MONITOR;
const N = parseInt(process.argv[2] || "200", 10);
const TIMEOUT_MS = 20000;

if (!GATEWAY_URL || !NATS_MONITOR) {
  console.error("wamp_fanout.js: set GATEWAY_URL and NATS_MONITOR");
  process.exit(2);
}
const WS_URL = GATEWAY_URL.replace(/^http/, "ws") + "/websocket";
const TOPIC = "fanout_test.t" + Date.now().toString(36) + Math.floor(Math.random() * 1e6);

function open() {
  return new Promise((resolve, reject) => {
    const c = new autobahn.Connection({ url: WS_URL, realm: "realm1", protocols: ["wamp.2.json"],
      max_retries: 0 });
    let opened = false;
    c.onopen = (s) => { opened = true; resolve({ c, s }); };
    c.onclose = (reason, details) => {
      if (!opened) reject(new Error("connection failed: " + reason + " " + JSON.stringify(details)));
      return true;
    };
    c.open();
  });
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let d = "";
      res.on("data", (x) => { d += x; });
      res.on("end", () => { try { resolve(JSON.parse(d)); } catch (e) { reject(e); } });
    }).on("error", reject);
  });
}

// NATS subscriptions on the topic's subject, over every connection.
async function natsSubs() {
  const z = await getJson(NATS_MONITOR + "/connz?subs=detail&limit=1024");
  let n = 0;
  for (const c of z.connections || []) {
    for (const s of c.subscriptions_list_detail || []) {
      if (s.subject === "events." + TOPIC) n++;
    }
  }
  return n;
}

async function waitFor(what, cond) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const t0 = Date.now();
  const received = new Array(N).fill(0);
  const subs = [];
  // Open in batches so the test does not measure the kernel's accept queue.
  for (let i = 0; i < N; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 50); j++) batch.push(open());
    subs.push(...await Promise.all(batch));
  }
  await Promise.all(subs.map(({ s }, i) =>
    s.subscribe(TOPIC, (args, kwargs) => {
      if (kwargs && kwargs.n === 1 && args && args[0] === "fan") received[i]++;
    })));
  say("%d sessions subscribed to %s in %d ms", N, TOPIC, Date.now() - t0);

  // One per gateway loop: a loop's sessions share its subscription (200
  // sessions over the loops leave none without).
  const loops = Number(process.env.GATEWAY_LOOPS || 1);
  const shared = await natsSubs();
  if (shared !== loops)
    throw new Error("expected " + loops + " NATS subscriptions on the topic (one per gateway loop), found " + shared);
  say("one NATS subscription per gateway loop, shared by its sessions");

  const pub = await open();
  let publisherGot = 0;
  await pub.s.subscribe(TOPIC, () => { publisherGot++; });
  const t1 = Date.now();
  const ack = await pub.s.publish(TOPIC, ["fan"], { n: 1 }, { acknowledge: true });
  if (!ack || !ack.id) throw new Error("no PUBLISHED for an acknowledged publish");
  await waitFor("every subscriber to get the event", () => received.every((x) => x >= 1));
  say("all %d got the event in %d ms", N, Date.now() - t1);
  await new Promise((r) => setTimeout(r, 300)); // room for duplicates to show
  const dup = received.filter((x) => x !== 1).length;
  if (dup) throw new Error(dup + " sessions got the event more than once");
  if (publisherGot !== 0) throw new Error("the publisher got its own event (exclude_me)");

  await Promise.all(subs.map(({ c }) => new Promise((resolve) => {
    c.onclose = () => { resolve(); return true; };
    c.close();
  })));
  pub.c.close();
  await waitFor("the NATS subscription to go with the last subscriber",
    async () => (await natsSubs()) === 0);
  say("NATS subscription dropped after the last one left");
  say("wamp_fanout: passed");
}

main().then(() => process.exit(0), (e) => {
  console.error("wamp_fanout: FAILED: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
