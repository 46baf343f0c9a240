// page_test.js: the front end in a real browser (Debian's chromium driven
// by playwright-core) against a running gateway.
//
//   GATEWAY_URL=http://127.0.0.1:5000 node tests/browser/page_test.js
//
// Needs nats-server, greeting_service, websocket_test and the gateway
// running (tests/integration/test_browser.py starts them). Steps:
//   1. the page loads and its WAMP session connects; with auth off (no
//      GATEWAY_AUTH) the Sign in control stays hidden;
//   2. subscribe to websocket_test.websocket_test;
//   3. POST /websocket_test.hello_websocket '[["websockets"], {"are": "awesome"}]'
//      shows that event;
//   4. publishing from the page (to the topic websocket_test.websocket_test)
//      shows that event;
//   5. calling greeting_service.hello from the page shows "Hello, Bob Ross";
//   6. subscribing to ">" is refused and the page says so;
//   7. screenshots (laptop and phone) go to SCREENSHOT_DIR (default /tmp).
// Exits 0 when every step passed; any page error fails the run.
"use strict";

const path = require("path");
const { open: openChromium } = require("./chromium");
const { post: postTo, step } = require("./page_kit");

const GATEWAY_URL = process.env.GATEWAY_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOT_DIR || "/tmp";
const STEP_MS = 10000;

if (!GATEWAY_URL) {
  console.error("page_test.js: set GATEWAY_URL (e.g. http://127.0.0.1:5000)");
  process.exit(2);
}

function eventSelector(topic, args, kwargs) {
  return `#events li[data-topic="${topic}"][data-args='${JSON.stringify(args)}']` +
    `[data-kwargs='${JSON.stringify(kwargs)}']`;
}

async function main() {
  const browser = await openChromium(CHROMIUM);
  const { page, errors } = browser;
  let failed = false;
  try {
    page.setDefaultTimeout(STEP_MS);

    await step("page loads and connects", async () => {
      const resp = await page.goto(GATEWAY_URL + "/");
      if (!resp || resp.status() !== 200) throw new Error("GET / -> " + (resp && resp.status()));
      await page.waitForSelector('#status[data-state="connected"]');
      if (await page.isVisible("#auth")) {
        throw new Error("the Sign in control shows with auth off");
      }
    });

    await step("subscribe to websocket_test.websocket_test", async () => {
      await page.fill("#sub-topic", "websocket_test.websocket_test");
      await page.click("#sub-btn");
      await page.waitForSelector('#subscriptions li[data-topic="websocket_test.websocket_test"]');
    });

    await step("HTTP POST /websocket_test.hello_websocket shows the event", async () => {
      const r = await postTo(GATEWAY_URL, "/websocket_test.hello_websocket",
        '[["websockets"], {"are": "awesome"}]');
      if (r.status !== 200 || r.body !== "[[], {}]") {
        throw new Error("POST -> " + r.status + " " + r.body);
      }
      await page.waitForSelector(eventSelector("websocket_test.websocket_test", ["websockets"],
        { are: "awesome" }));
    });

    await step("publish from the page shows the event", async () => {
      const topic = await page.inputValue("#pub-topic");
      if (topic !== "websocket_test.websocket_test") throw new Error("unexpected topic " + topic);
      const data = await page.inputValue("#pub-data");
      if (JSON.parse(data)[1].name !== "Nobody") throw new Error("unexpected prefill " + data);
      await page.click("#pub-btn");
      await page.waitForSelector("#pub-message.ok");
      await page.waitForSelector(eventSelector("websocket_test.websocket_test", [],
        { name: "Nobody" }));
    });

    await step("call greeting_service.hello shows Hello, Bob Ross", async () => {
      await page.click("#call-btn");
      await page.waitForFunction(() => {
        const el = document.getElementById("call-result");
        return el && !el.hidden && el.textContent.includes("Hello, Bob Ross");
      });
      const cls = await page.getAttribute("#call-result", "class");
      if (cls.includes("error")) throw new Error("call result shown as an error");
    });

    await step("a failing call shows its error", async () => {
      await page.fill("#call-proc", "greeting_service.hello");
      await page.fill("#call-data", "[[], {}]");
      await page.click("#call-btn");
      await page.waitForSelector("#call-result.error");
      const text = await page.textContent("#call-result");
      if (!text.includes("wamp.error.invalid_argument")) throw new Error("shown: " + text);
    });

    await step("subscribing to > is refused", async () => {
      await page.fill("#sub-topic", ">");
      await page.click("#sub-btn");
      await page.waitForSelector("#sub-message.error");
      const text = await page.textContent("#sub-message");
      if (!text.includes("wamp.error.invalid_uri")) throw new Error("shown: " + text);
      const subs = await page.$$eval("#subscriptions li", (els) => els.map((e) => e.dataset.topic));
      if (subs.length !== 1) throw new Error("subscriptions now: " + JSON.stringify(subs));
    });

    await step("screenshots", async () => {
      await page.fill("#call-proc", "greeting_service.hello");
      await page.fill("#call-data", '[["Bob"], {"last_name": "Ross"}]');
      await page.click("#call-btn");
      await page.waitForFunction(() =>
        !document.getElementById("call-result").classList.contains("error") &&
        document.getElementById("call-result").textContent.includes("Hello, Bob Ross"));
      const laptop = path.join(SHOTS, "natsrpc-page-laptop.png");
      await page.screenshot({ path: laptop, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      const phone = path.join(SHOTS, "natsrpc-page-phone.png");
      await page.screenshot({ path: phone, fullPage: true });
      // Nothing wider than the phone's screen.
      const overflow = await page.evaluate(() =>
        document.documentElement.scrollWidth > window.innerWidth + 1);
      if (overflow) throw new Error("the page scrolls sideways at 390 px");
      console.log("     %s\n     %s", laptop, phone);
    });

    if (errors.length) {
      throw new Error("errors in the page:\n  " + errors.join("\n  "));
    }
  } catch (e) {
    failed = true;
    if (errors.length) console.log("page errors:\n  " + errors.join("\n  "));
  } finally {
    await browser.close();
  }
  console.log(failed ? "page_test: FAILED" : "page_test: all steps passed");
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
