// swagger_authorize.mjs: Swagger UI's Authorize button against a gateway
// with GATEWAY_AUTH. In headless Chromium, /docs: "Try it out" on RPC
// without credentials answers 401; after Authorize with the bearer TOKEN,
// the same call answers 200 with the principal as body.
//
//   GATEWAY_URL=http://127.0.0.1:5000 CHROMIUM=/usr/bin/chromium TOKEN=... RPC=principal_service.whoami \
//     node swagger_authorize.mjs
//
// Prints {"without": 401, "with": 200, "body": ...} on its last line.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.env.GATEWAY_URL || "http://127.0.0.1:5000";
const token = process.env.TOKEN;
const rpc = process.env.RPC || "principal_service.whoami";
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
  const op = page.locator(".opblock").filter({
    has: page.locator(`.opblock-summary-path[data-path="/${rpc}"]`),
  });
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();

  async function execute() {
    await op.locator("button.execute").click();
    const status = op.locator(".live-responses-table tbody .response-col_status");
    await status.waitFor({ timeout: 15000 });
    const code = parseInt((await status.textContent()).trim(), 10);
    const body = await op.locator(".live-responses-table tbody .response-col_description pre")
      .first().textContent();
    return { code, body: JSON.parse(body) };
  }

  const without = await execute();
  assert.equal(without.code, 401, JSON.stringify(without));

  // Authorize: the bearer scheme's value, then close the dialog.
  await page.locator(".auth-wrapper button.authorize").click();
  const bearer = page.locator(".auth-container").filter({ hasText: "bearer" }).first();
  await bearer.locator("input").first().fill(token);
  await bearer.locator("button.authorize").click();
  await page.locator("button.btn-done").first().click();

  await op.locator("button.btn-clear").click().catch(() => {});
  const withAuth = await execute();
  assert.equal(withAuth.code, 200, JSON.stringify(withAuth));
  assert.deepEqual(errors, []);
  console.log(JSON.stringify({ without: without.code, with: withAuth.code, body: withAuth.body }));
} finally {
  await browser.close();
}
