// swagger_ui.mjs: loads the gateway's /docs in headless Chromium and checks
// that Swagger UI renders /openapi.json: one operation per rpc named, the
// description as written, and "Try it out" on greeting_service.hello
// answered 200 with the example body; with widget_service (the REST test
// service) running, its GET /widgets/{n} and POST /widgets called too.
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
  // The description is Markdown: "<service>" must show, not vanish as a tag.
  const desc = (await page.textContent(".info .description")).replace(/\s+/g, " ").trim();
  assert.equal(desc, "Every rpc of the natsrpc services found on NATS, called with " +
    "POST /<service>.<method> and a body [args, kwargs].");
  // "Try it out" sends the document's example body, and the rpc accepts it.
  if (rpcs.includes("greeting_service.hello")) {
    const op = page.locator(".opblock").filter({
      has: page.locator('.opblock-summary-path[data-path="/greeting_service.hello"]'),
    });
    await op.locator(".opblock-summary").click();
    await op.locator("button.try-out__btn").click();
    await op.locator("button.execute").click();
    const status = op.locator(".live-responses-table tbody .response-col_status");
    await status.waitFor({ timeout: 15000 });
    assert.equal((await status.textContent()).trim(), "200");
    const body = op.locator(".live-responses-table tbody .response-col_description pre").first();
    assert.deepEqual(JSON.parse(await body.textContent()), [["Hello, Bob Ross"], {}]);
  }
  // A REST route: the path parameter typed in, and a create with its
  // example body answered 201.
  if (rpcs.includes("widget_service.get_widget")) {
    const op = page.locator(".opblock-get").filter({
      has: page.locator('.opblock-summary-path[data-path="/widgets/{n}"]'),
    });
    await op.locator(".opblock-summary").click();
    await op.locator("button.try-out__btn").click();
    await op.locator('tr[data-param-name="n"] input').fill("7");
    await op.locator("button.execute").click();
    const status = op.locator(".live-responses-table tbody .response-col_status");
    await status.waitFor({ timeout: 15000 });
    assert.equal((await status.textContent()).trim(), "200");
    const body = op.locator(".live-responses-table tbody .response-col_description pre").first();
    assert.deepEqual(JSON.parse(await body.textContent()), { n: 7, verbose: false, by: "widget_service" });
  }
  if (rpcs.includes("widget_service.make_widget")) {
    const op = page.locator(".opblock-post").filter({
      has: page.locator('.opblock-summary-path[data-path="/widgets"]'),
    });
    await op.locator(".opblock-summary").click();
    await op.locator("button.try-out__btn").click();
    await op.locator("button.execute").click();
    const status = op.locator(".live-responses-table tbody .response-col_status");
    await status.waitFor({ timeout: 15000 });
    assert.equal((await status.textContent()).trim(), "201");
    const body = op.locator(".live-responses-table tbody .response-col_description pre").first();
    assert.deepEqual(JSON.parse(await body.textContent()), { n: 7, tags: ["red"], by: "widget_service" });
  }
  assert.deepEqual(errors, []);
  console.log(JSON.stringify({ rendered: paths.length }));
} finally {
  await browser.close();
}
