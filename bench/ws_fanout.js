// ws_fanout.js: WebSocket (WAMP) fan-out through the gateway.
//
//   node bench/ws_fanout.js GATEWAY_URL NATS_HOST:PORT SOCKETS RATE SECONDS
//
// SOCKETS autobahn sessions subscribe to one topic; RATE messages a second
// are published straight on NATS, on events.<topic> (a bare NATS client
// below, no gateway on the way in) for SECONDS, each carrying its send time; every session
// records each event's delivery latency. Prints one line:
//   RESULT sockets=N rate=R sent=S expected=E delivered=D events_per_s=X p50_ms=A p99_ms=B max_ms=C
// Publisher and subscribers share this process and its clock
// (performance.now), so the latency is publish -> NATS -> gateway -> socket
// -> JSON parsed in the client.
"use strict";

const net = require("net");
const { performance } = require("perf_hooks");
const autobahn = require("autobahn");

const log = console.log.bind(console);
console.log = () => {}; // autobahn's chatter on close

const [gatewayUrl, natsAddr, socketsArg, rateArg, secondsArg] = process.argv.slice(2);
if (!gatewayUrl || !natsAddr) {
  console.error("usage: ws_fanout.js GATEWAY_URL NATS_HOST:PORT SOCKETS RATE SECONDS");
  process.exit(2);
}
const SOCKETS = parseInt(socketsArg || "100", 10);
const RATE = parseFloat(rateArg || "100");
const SECONDS = parseFloat(secondsArg || "5");
const TOPIC = "bench_fanout.t" + process.pid;
const WS_URL = gatewayUrl.replace(/^http/, "ws") + "/websocket";

function openSession() {
  return new Promise((resolve, reject) => {
    const c = new autobahn.Connection({ url: WS_URL, realm: "realm1", protocols: ["wamp.2.json"],
      max_retries: 0 });
    let ok = false;
    c.onopen = (s) => { ok = true; resolve({ c, s }); };
    c.onclose = (r) => { if (!ok) reject(new Error("cannot connect: " + r)); return true; };
    c.open();
  });
}

// The smallest NATS publisher: CONNECT, then PUB lines.
function natsConnect(addr) {
  const [host, port] = addr.split(":");
  return new Promise((resolve, reject) => {
    const sock = net.connect(parseInt(port, 10), host);
    sock.setNoDelay(true);
    let buf = "";
    sock.on("error", reject);
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.startsWith("INFO") && buf.includes("\r\n")) {
        sock.write('CONNECT {"verbose":false,"pedantic":false,"name":"ws_fanout bench"}\r\nPING\r\n');
        buf = "\u0000";
      } else if (buf.includes("PONG")) {
        sock.removeAllListeners("data");
        sock.on("data", (x) => { if (x.toString().includes("PING")) sock.write("PONG\r\n"); });
        resolve(sock);
      }
    });
  });
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function main() {
  const lat = [];
  let delivered = 0;
  const sessions = [];
  for (let i = 0; i < SOCKETS; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(SOCKETS, i + 100); j++) batch.push(openSession());
    sessions.push(...await Promise.all(batch));
  }
  let measuring = true;
  let lastAt = 0;
  await Promise.all(sessions.map(({ s }) => s.subscribe(TOPIC, (args, kwargs) => {
    const now = performance.now();
    delivered++;
    lastAt = now;
    if (measuring && kwargs && typeof kwargs.t === "number") lat.push(now - kwargs.t);
  })));
  const nats = await natsConnect(natsAddr);

  // Ticks of 10 ms, each sending what the rate owes so far.
  const t0 = performance.now();
  let sent = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.min(Math.floor(((now - t0) / 1000) * RATE), Math.floor(SECONDS * RATE));
      let out = "";
      for (; sent < due; sent++) {
        const body = JSON.stringify([[], { t: performance.now(), i: sent }]);
        out += "PUB events." + TOPIC + " " + Buffer.byteLength(body) + "\r\n" + body + "\r\n";
      }
      if (out) nats.write(out);
      if (sent >= Math.floor(SECONDS * RATE)) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  const expected = sent * SOCKETS;
  const deadline = performance.now() + 10000;
  while (delivered < expected && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  measuring = false;
  const span = (Math.max(lastAt, t0) - t0) / 1000;
  lat.sort((a, b) => a - b);
  log("RESULT sockets=%d rate=%d sent=%d expected=%d delivered=%d events_per_s=%d p50_ms=%s p99_ms=%s max_ms=%s",
    SOCKETS, RATE, sent, expected, delivered, Math.round(delivered / (span || 1)),
    pct(lat, 0.5).toFixed(2), pct(lat, 0.99).toFixed(2), lat.length ? lat[lat.length - 1].toFixed(2) : "nan");
  nats.end();
  for (const { c } of sessions) c.close();
  setTimeout(() => process.exit(delivered === expected ? 0 : 1), 200);
}

main().catch((e) => {
  console.error("ws_fanout: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
