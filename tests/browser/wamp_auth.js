// wamp_auth.js: WAMP-Ticket with the autobahn npm client against a gateway
// with GATEWAY_AUTH.
//
//   GATEWAY_URL=http://127.0.0.1:5000 TICKET=<a bearer token> SCOPED_RPC=<subject> \
//     node tests/browser/wamp_auth.js
//
// 1. authmethods ["ticket"] with TICKET: WELCOME (authrole "user"), a call of
//    principal_service.whoami answers the principal, SCOPED_RPC (which the
//    ticket's scopes do not cover) fails with wamp.error.not_authorized.
// 2. a wrong ticket: the session is refused (wamp.error.not_authorized).
// 3. anonymous: a public rpc answers, whoami fails with
//    wamp.error.not_authorized, an acknowledged publish too.
// Prints "wamp_auth: passed" and exits 0 when all of that held.
"use strict";

const autobahn = require("autobahn");

const say = console.log.bind(console);
console.log = () => {};

const GATEWAY_URL = process.env.GATEWAY_URL;
const TICKET = process.env.TICKET;
const SCOPED_RPC = process.env.SCOPED_RPC;
if (!GATEWAY_URL || !TICKET || !SCOPED_RPC) {
  console.error("wamp_auth.js: set GATEWAY_URL, TICKET and SCOPED_RPC");
  process.exit(2);
}
const WS_URL = GATEWAY_URL.replace(/^http/, "ws") + "/websocket";

function open(ticket) {
  return new Promise((resolve, reject) => {
    const opts = { url: WS_URL, realm: "realm1", protocols: ["wamp.2.json"], max_retries: 0 };
    if (ticket !== undefined) {
      opts.authmethods = ["ticket"];
      opts.authid = "tester";
      opts.onchallenge = (session, method) => {
        if (method !== "ticket") throw new Error("unexpected challenge " + method);
        return ticket;
      };
    }
    const c = new autobahn.Connection(opts);
    let opened = false;
    c.onopen = (s, details) => { opened = true; resolve({ c, s, details }); };
    c.onclose = (reason, details) => {
      if (!opened) reject(Object.assign(new Error("refused: " + details.reason), { details }));
      return true;
    };
    c.open();
  });
}

function check(cond, what) {
  if (!cond) throw new Error("failed: " + what);
}

async function expectError(p, uri, what) {
  try {
    await p;
  } catch (e) {
    check(e.error === uri, what + ": error " + e.error + " " + JSON.stringify(e.kwargs));
    return e;
  }
  throw new Error(what + ": expected " + uri);
}

async function main() {
  // 1. ticket
  const t = await open(TICKET);
  check(t.details.authrole === "user", "authrole user, got " + JSON.stringify(t.details));
  check(t.details.authmethod === "ticket", "authmethod ticket");
  const who = await t.s.call("principal_service.whoami");
  check(who && typeof who === "object", "whoami answers");
  const p = Array.isArray(who) ? who[0] : (who.args ? who.args[0] : who);
  check(p && p.sub === t.details.authid, "whoami is the session's authid: " + JSON.stringify(who));
  const denied = await expectError(t.s.call(SCOPED_RPC), "wamp.error.not_authorized", "scoped rpc");
  check(denied.kwargs.code === 403, "403 in kwargs: " + JSON.stringify(denied.kwargs));
  t.c.close();

  // 2. wrong ticket
  try {
    await open("not-a-valid-ticket-0123456789");
    throw new Error("a wrong ticket was accepted");
  } catch (e) {
    check(e.details && e.details.reason === "wamp.error.not_authorized",
      "wrong ticket refused with not_authorized: " + e.message);
  }

  // 3. anonymous
  const a = await open();
  check(a.details.authrole === "anonymous", "anonymous authrole");
  const hello = await a.s.call("greeting_service.hello", ["Bob"]);
  check(hello === "Hello, Bob", "public call answers: " + JSON.stringify(hello));
  const e = await expectError(a.s.call("principal_service.whoami"), "wamp.error.not_authorized",
    "anonymous whoami");
  check(e.kwargs.code === 401, "401 in kwargs");
  await expectError(a.s.publish("wamp_auth.t", [1], {}, { acknowledge: true }),
    "wamp.error.not_authorized", "anonymous publish");
  a.c.close();
  say("wamp_auth: passed");
  process.exit(0);
}

setTimeout(() => { say("wamp_auth: timed out"); process.exit(1); }, 20000);
main().catch((e) => { say("wamp_auth: " + e.message); process.exit(1); });
