// cross_site.js: a page of another origin tries to run an rpc through the
// visitor's browser (Debian's chromium driven by playwright-core).
//
//   GATEWAY_URL=http://127.0.0.1:5000 node tests/browser/cross_site.js
//
// It serves the attacker's page itself, on http://localhost:<free port> (a
// site other than 127.0.0.1), and the page tries thing_service.create_thing
// three ways, as an attacker would:
//   form   an auto-submitted <form enctype="text/plain"> (no preflight)
//   nocors fetch(..., {mode: "no-cors", body: text/plain}) (no preflight)
//   json   fetch(..., {headers: {"Content-Type": "application/json"}}),
//          which the browser preflights first
// It prints one line "RESULT <json>": what the page could see of each
// (status, body, or the error). Whether anything ran is for the caller to
// check (the number of things); the EVIL_ORIGIN it prints is the page's,
// for a gateway that lists it in GATEWAY_CORS_ORIGINS.
"use strict";

const http = require("http");
const { open: openChromium } = require("./chromium");

const GATEWAY_URL = process.env.GATEWAY_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PORT = Number(process.env.EVIL_PORT || 0);

if (!GATEWAY_URL) {
  console.error("cross_site.js: set GATEWAY_URL (e.g. http://127.0.0.1:5000)");
  process.exit(2);
}

function page(gw) {
  const rpc = gw + "/thing_service.create_thing";
  // text/plain form: the body is name=value, shaped to be JSON.
  return `<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" action="${rpc}" enctype="text/plain" target="sink">
<input name='[[], {"name": "evil-form", "x": "' value='"}]'>
</form>
<script>
window.results = {};
window.formDone = false;
document.querySelector("iframe").addEventListener("load", () => { window.formDone = true; });
document.getElementById("f").submit();
(async () => {
  try {
    const r = await fetch(${JSON.stringify(rpc)}, {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: '[[], {"name": "evil-nocors"}]'});
    window.results.nocors = {type: r.type, status: r.status};
  } catch (e) { window.results.nocors = {error: String(e)}; }
  try {
    const r = await fetch(${JSON.stringify(rpc)}, {method: "POST",
      headers: {"Content-Type": "application/json"}, body: '[[], {"name": "evil-json"}]'});
    window.results.json = {type: r.type, status: r.status, body: await r.text()};
  } catch (e) { window.results.json = {error: String(e)}; }
  window.done = true;
})();
</script></body></html>`;
}

(async () => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(page(GATEWAY_URL));
  });
  await new Promise((r) => server.listen(PORT, "127.0.0.1", r));
  const origin = "http://localhost:" + server.address().port;
  console.log("EVIL_ORIGIN " + origin);
  const browser = await openChromium(CHROMIUM);
  let code = 0;
  try {
    await browser.page.goto(origin + "/evil.html");
    await browser.page.waitForFunction(() => window.done === true && window.formDone === true,
      null, { timeout: 20000 });
    const results = await browser.page.evaluate(() => window.results);
    console.log("RESULT " + JSON.stringify(results));
  } catch (e) {
    console.log("FAIL " + (e && e.message ? e.message : e));
    code = 1;
  } finally {
    await browser.close();
    server.close();
  }
  process.exit(code);
})();
