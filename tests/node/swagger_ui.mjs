// swagger_ui.mjs: loads the gateway's /docs in headless Chromium and checks
// that Swagger UI renders /openapi.json: one operation per rpc named.
//
//   GATEWAY_URL=http://127.0.0.1:5000 CHROMIUM=/usr/bin/chromium node swagger_ui.mjs [rpc...]
//
// playwright-core comes from the root package.json (npm ci at the root).
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.env.GATEWAY_URL || "http://127.0.0.1:5000";
const rpcs = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${base}/docs`);
  await page.waitForSelector(".opblock-summary-path", { timeout: 15000 });
  const paths = await page.$$eval(".opblock-summary-path", (els) => els.map((e) => e.textContent.trim()));
  for (const rpc of rpcs) assert.ok(paths.includes(`/${rpc}`), `/${rpc} not shown; shown: ${paths}`);
  const title = await page.textContent(".info .title");
  assert.match(title, /natsrpc gateway/);
  assert.deepEqual(errors, []);
  console.log(JSON.stringify({ rendered: paths.length }));
} finally {
  await browser.close();
}
