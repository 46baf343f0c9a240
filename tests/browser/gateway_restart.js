// gateway_restart.js: the page (frontend/app.js) in chromium across gateway
// restarts. Driven by tests/integration/test_gateway_restart.py over
// stdin/stdout, one line each way:
//
//   page -> test   READY <n>   a WAMP session (a new one for n > 0) is open
//                              and the page's subscription to the topic is
//                              confirmed (SUBSCRIBED)
//   test -> page   EXPECT <n>  the test published [[n], {}] on the topic
//   page -> test   GOT <n>     the page shows that event
//   test -> page   RESTART (the gateway is restarted; wait for READY n+1)
//                  or END
//
// Between GOT and the next READY the test stops the gateway (SIGTERM or
// SIGKILL) and starts it again on the same port; the page must reconnect
// (autobahn's auto-reconnect with the page's backoff) and subscribe again by
// itself. Page errors fail the run, except the browser's own report of a
// WebSocket that could not connect while the gateway was down.
"use strict";

const { open: openChromium } = require("./chromium");
const { stdinLines } = require("./page_kit");

const GATEWAY_URL = process.env.GATEWAY_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TOPIC = process.env.TOPIC || "restart_it.ticks";
const WAIT_MS = 30000;

if (!GATEWAY_URL) {
  console.error("gateway_restart.js: set GATEWAY_URL (e.g. http://127.0.0.1:5000)");
  process.exit(2);
}

const nextLine = stdinLines();

async function main() {
  const browser = await openChromium(CHROMIUM);
  const { page, errors } = browser;
  let failed = false;
  try {
    page.setDefaultTimeout(WAIT_MS);
    const resp = await page.goto(GATEWAY_URL + "/");
    if (!resp || resp.status() !== 200) throw new Error("GET / -> " + (resp && resp.status()));
    await page.waitForSelector('#status[data-state="connected"]');
    await page.fill("#sub-topic", TOPIC);
    await page.click("#sub-btn");
    let prev = null;
    for (let n = 0; ; n++) {
      const handle = await page.waitForFunction(([prevId, topic]) => {
        const s = window.natsrpcPage.connection.session;
        if (!s || !s.isOpen || s.id === prevId) return false;
        if (!document.querySelector('#subscriptions li[data-topic="' + topic + '"]')) return false;
        return s.id;
      }, [prev, TOPIC], { timeout: WAIT_MS });
      prev = await handle.jsonValue();
      console.log("READY %d", n);
      const cmd = await nextLine();
      if (cmd !== "EXPECT " + n) throw new Error("unexpected command " + cmd);
      await page.waitForSelector(`#events li[data-topic="${TOPIC}"][data-args='[${n}]']`);
      console.log("GOT %d", n);
      const next = await nextLine();
      if (next === "END") break;
      if (next !== "RESTART") throw new Error("unexpected command " + next);
    }
    const real = errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
    if (real.length) throw new Error("errors in the page:\n  " + real.join("\n  "));
  } catch (e) {
    failed = true;
    console.log("FAIL %s", e && e.message ? e.message : e);
  } finally {
    await browser.close();
  }
  console.log(failed ? "gateway_restart: FAILED" : "gateway_restart: all steps passed");
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
