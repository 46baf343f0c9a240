// things_live.js: the page's live list of things in a real browser
// (Debian's chromium driven by playwright-core) against a running gateway
// and thing_service with its database.
//
//   GATEWAY_URL=http://127.0.0.1:5000 node tests/browser/things_live.js
//
// Steps: the page loads and shows the things already there; then a thing
// created, renamed and deleted with curl (the real curl, as a user types
// it) shows on the page, each within LIVE_MS (1 s) of curl's answer.
// Exits 0 when every step passed; any page error fails the run.
"use strict";

const { execFileSync } = require("child_process");
const { open: openChromium } = require("./chromium");

const GATEWAY_URL = process.env.GATEWAY_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const LIVE_MS = Number(process.env.LIVE_MS || 1000);

if (!GATEWAY_URL) {
  console.error("things_live.js: set GATEWAY_URL (e.g. http://127.0.0.1:5000)");
  process.exit(2);
}

function curl(rpc, body) {
  const out = execFileSync("curl", ["-sS", "-X", "POST", GATEWAY_URL + "/thing_service." + rpc,
    "-d", body], { encoding: "utf8", timeout: 10000 });
  return JSON.parse(out);
}

// Runs change(), then waits for selector; fails past LIVE_MS after curl answered.
async function live(page, what, change, selector, gone) {
  const result = change();
  const t0 = Date.now();
  await page.waitForSelector(selector, { state: gone ? "detached" : "attached", timeout: 5000 });
  const ms = Date.now() - t0;
  if (ms > LIVE_MS) throw new Error(what + " showed after " + ms + " ms (more than " + LIVE_MS + ")");
  console.log("ok   %s: on the page %d ms after curl answered", what, ms);
  return result;
}

async function main() {
  const browser = await openChromium(CHROMIUM);
  const { page, errors } = browser;
  let failed = false;
  try {
    const before = curl("create_thing", '[[], {"name": "Already here"}]')[0][0];
    const resp = await page.goto(GATEWAY_URL + "/");
    if (!resp || resp.status() !== 200) throw new Error("GET / -> " + (resp && resp.status()));
    await page.waitForSelector('#things-state[data-state="live"]', { timeout: 10000 });
    await page.waitForSelector(`#things li[data-uuid="${before.uuid}"]`, { timeout: 1000 });
    console.log("ok   the page lists the things already there");

    const t = await live(page, "created", () => curl("create_thing", '[[], {"name": "Alice"}]')[0][0],
      '#things li[data-name="Alice"]');
    const uuid = t.uuid;
    await live(page, "renamed", () => curl("rename_thing", JSON.stringify([[], { uuid, name: "Bob" }])),
      `#things li[data-uuid="${uuid}"][data-name="Bob"]`);
    await live(page, "deleted", () => curl("delete_thing", JSON.stringify([[], { uuid }])),
      `#things li[data-uuid="${uuid}"]`, true);
    if (errors.length) throw new Error("errors in the page:\n  " + errors.join("\n  "));
  } catch (e) {
    failed = true;
    console.log("FAIL %s", e && e.message ? e.message : e);
    console.log("     the page says: %s", await page.textContent("#things-state").catch(() => "?"));
    if (errors.length) console.log("page errors:\n  " + errors.join("\n  "));
  } finally {
    await browser.close();
  }
  console.log(failed ? "things_live: FAILED" : "things_live: all steps passed");
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
