// page_auth.js: the front end's Sign in against a gateway with GATEWAY_AUTH,
// in chromium (playwright-core). Driven by tests/integration/test_page_auth.py,
// which starts nats-server, greeting_service, websocket_test, thing_service
// (PostgreSQL) and the gateway with an auth file, and passes the tokens:
//
//   GATEWAY_URL  the gateway
//   WRITER       a token of "alice" with the scope things:write
//   READER       a token of "bob" with no scope
//   EVIL         a token whose sub is EVIL_SUB (quotes and HTML)
//   JWT          an EdDSA JWT of "jwt-carol"
//
// One line each way over stdin/stdout for the reconnect step:
//   page -> test   RESTART     (signed in, subscribed: restart the gateway)
//   page -> test   REVOKE      (restart it with WRITER taken out of the file)
//   test -> page   RESTARTED   (the gateway is up again on the same port)
//
// Every text the page shows is compared whole. Prints "page_auth: all steps
// passed" and exits 0 when every step passed; page errors fail the run
// (except the browser's report of a WebSocket it could not open while the
// gateway was down).
"use strict";

const path = require("path");
const { open: openChromium } = require("./chromium");
const { post: postTo, step, stdinLines } = require("./page_kit");

const { GATEWAY_URL, WRITER, READER, EVIL, EVIL_SUB, JWT } = process.env;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOT_DIR || "/tmp";
const STEP_MS = 15000;
const TOPIC = "websocket_test.websocket_test";

if (!GATEWAY_URL || !WRITER || !READER || !EVIL || !EVIL_SUB || !JWT) {
  console.error("page_auth.js: set GATEWAY_URL, WRITER, READER, EVIL, EVIL_SUB and JWT");
  process.exit(2);
}

const nextLine = stdinLines();

function same(got, want, what) {
  if (got !== want) {
    throw new Error(what + ":\n       got  " + JSON.stringify(got) + "\n       want " +
      JSON.stringify(want));
  }
}

async function main() {
  const browser = await openChromium(CHROMIUM);
  const { page, errors } = browser;
  let failed = false;

  const text = (sel) => page.textContent(sel);
  // Whether the element takes no room on the page (hidden, not just marked so).
  const hidden = async (sel) => !(await page.isVisible(sel));

  // The current session's id once it is open and differs from prev.
  async function sessionOpen(prev) {
    const h = await page.waitForFunction((prevId) => {
      const c = window.natsrpcPage.connection;
      const s = c && c.session;
      if (!s || !s.isOpen || s.id === prevId) return false;
      return document.getElementById("status").getAttribute("data-state") === "connected" && s.id;
    }, prev === undefined ? null : prev);
    return h.jsonValue();
  }
  const sessionId = () => page.evaluate(() => {
    const s = window.natsrpcPage.connection.session;
    return s && s.isOpen ? s.id : null;
  });

  // Calls proc from the Call card; returns [class, text] of the result.
  async function call(proc, data) {
    await page.evaluate(() => { document.getElementById("call-result").hidden = true; });
    await page.fill("#call-proc", proc);
    await page.fill("#call-data", data);
    await page.click("#call-btn");
    await page.waitForFunction(() => {
      const el = document.getElementById("call-result");
      return !el.hidden && !el.textContent.startsWith("Calling ");
    });
    return [await page.getAttribute("#call-result", "class"), await text("#call-result")];
  }

  async function expectDenied(proc, data, want) {
    const [cls, got] = await call(proc, data);
    same(cls, "result error", proc + " result class");
    same(got, want, proc + " shows");
  }

  async function signIn(token) {
    const prev = await sessionId();
    await page.fill("#signin-token", token);
    await page.click("#signin-btn");
    return prev;
  }

  // Waits for the Sign in block to say who, on a new session after prev.
  async function expectWho(prev, who) {
    await sessionOpen(prev);
    await page.waitForFunction((w) => document.getElementById("auth-who").textContent === w, who);
  }

  async function noInjection() {
    const r = await page.evaluate(() => ({
      imgs: document.querySelectorAll("img").length,
      pwned: window.__pwned === undefined ? null : window.__pwned,
    }));
    same(JSON.stringify(r), JSON.stringify({ imgs: 0, pwned: null }), "the DOM after hostile text");
  }

  try {
    page.setDefaultTimeout(STEP_MS);

    await step("anonymous: the page connects and shows Sign in", async () => {
      const resp = await page.goto(GATEWAY_URL + "/");
      if (!resp || resp.status() !== 200) throw new Error("GET / -> " + (resp && resp.status()));
      await sessionOpen();
      same(await hidden("#auth"), false, "#auth hidden");
      same(await text("#auth-who"), "Not signed in", "who");
      same(await hidden("#signin-form"), false, "sign-in form hidden");
      same(await hidden("#signout-btn"), true, "sign-out hidden");
      same(await text("#auth-message"), "", "auth message");
      same(await page.getAttribute("#signin-token", "type"), "password", "token field type");
    });

    await step("anonymous: greeting_service.hello (public) answers", async () => {
      const [cls] = await call("greeting_service.hello", '[["Bob"], {"last_name": "Ross"}]');
      same(cls, "result", "result class");
      same(await text("#call-result .value"), "Hello, Bob Ross", "value");
    });

    await step("anonymous: create_thing says sign in (401)", async () => {
      await expectDenied("thing_service.create_thing", '[[], {"name": "anon"}]',
        "Not authorized (401): sign in to call thing_service.create_thing.");
    });

    await step("anonymous: subscribe works, publishing asks to sign in (401)", async () => {
      await page.fill("#sub-topic", TOPIC);
      await page.click("#sub-btn");
      await page.waitForSelector(`#subscriptions li[data-topic="${TOPIC}"]`);
      await page.fill("#pub-topic", TOPIC);
      await page.click("#pub-btn");
      await page.waitForSelector("#pub-message.error");
      same(await text("#pub-message"), "Not authorized (401): sign in to publish to " + TOPIC +
        ".", "publish message");
    });

    await step("a wrong token is refused and the page stays anonymous", async () => {
      const prev = await signIn("wrong-token-0123456789abcdef");
      await page.waitForSelector("#auth-message.error");
      same(await text("#auth-message"), "Sign-in refused: unknown bearer token", "refusal");
      await expectWho(prev, "Not signed in");
      same(await page.inputValue("#signin-token"), "", "the field is emptied");
      const [cls] = await call("greeting_service.hello", '[["Bob"], {"last_name": "Ross"}]');
      same(cls, "result", "public call after the refusal");
      await expectDenied("thing_service.create_thing", '[[], {"name": "anon"}]',
        "Not authorized (401): sign in to call thing_service.create_thing.");
    });

    await step("a token with quotes and HTML is refused, nothing injected", async () => {
      const prev = await signIn('"><img src=x onerror="window.__pwned=1">\'</p>');
      await page.waitForFunction(() =>
        document.getElementById("auth-message").textContent.startsWith("Sign-in refused"));
      same(await text("#auth-message"),
        "Sign-in refused: the bearer token is empty or has characters a token cannot have",
        "refusal");
      await expectWho(prev, "Not signed in");
      await noInjection();
    });

    await step("a 10 KB token is refused before it is sent", async () => {
      const prev = await sessionId();
      await page.fill("#signin-token", "a".repeat(10240));
      await page.click("#signin-btn");
      await page.waitForFunction(() =>
        document.getElementById("auth-message").textContent.startsWith("That token"));
      same(await text("#auth-message"),
        "That token is too long: 10240 bytes; the gateway takes at most 8185.", "refusal");
      same(await sessionId(), prev, "the session is the same");
      same(await page.inputValue("#signin-token"), "", "the field is emptied");
      same(await text("#auth-who"), "Not signed in", "who");
    });

    await step("a token of the longest length the page sends reaches the gateway", async () => {
      const prev = await signIn("b".repeat(8185));
      await page.waitForSelector("#auth-message.error");
      same(await text("#auth-message"), "Sign-in refused: unknown bearer token", "refusal");
      await expectWho(prev, "Not signed in");
    });

    await step("an empty token asks for one", async () => {
      const prev = await signIn("   ");
      same(await text("#auth-message"), "Enter a token to sign in.", "message");
      same(await sessionId(), prev, "the session is the same");
    });

    await step("a token without things:write: create_thing names the scope (403)", async () => {
      const prev = await signIn(READER);
      await expectWho(prev, "Signed in as bob");
      same(await text("#auth-message"), "", "auth message after signing in");
      same(await hidden("#signin-form"), true, "sign-in form hidden");
      same(await hidden("#signout-btn"), false, "sign-out hidden");
      await expectDenied("thing_service.create_thing", '[[], {"name": "bob"}]',
        "Not allowed (403): your credentials lack the scope things:write to call " +
        "thing_service.create_thing.");
      // the subscription made anonymously was made again in this session
      await page.waitForSelector(`#subscriptions li[data-topic="${TOPIC}"]`);
    });

    await step("sign out returns to anonymous", async () => {
      const prev = await sessionId();
      await page.click("#signout-btn");
      await expectWho(prev, "Not signed in");
      same(await text("#auth-message"), "Signed out.", "message");
      same(await hidden("#signin-form"), false, "sign-in form hidden");
      same(await hidden("#signout-btn"), true, "sign-out hidden");
      await expectDenied("thing_service.create_thing", '[[], {"name": "anon"}]',
        "Not authorized (401): sign in to call thing_service.create_thing.");
    });

    await step("a sub with quotes and HTML shows as text", async () => {
      const prev = await signIn(EVIL);
      await expectWho(prev, "Signed in as " + EVIL_SUB);
      await noInjection();
      await page.click("#signout-btn");
      await expectWho(undefined, "Not signed in");
    });

    await step("a JWT signs in; a second submit while it does is ignored", async () => {
      const prev = await sessionId();
      await page.fill("#signin-token", JWT);
      const seen = await page.evaluate(() => {
        const f = document.getElementById("signin-form");
        f.requestSubmit();
        f.requestSubmit(); // the field is empty now: would say "Enter a token"
        return document.getElementById("auth-message").textContent;
      });
      same(seen, "Signing in…", "message after two submits");
      await expectWho(prev, "Signed in as jwt-carol");
      same(await text("#auth-message"), "", "auth message");
      await page.click("#signout-btn");
      await expectWho(undefined, "Not signed in");
    });

    const name = "page-auth-" + Date.now();
    await step("with things:write: create_thing works and the live list shows it", async () => {
      const prev = await signIn(WRITER);
      await expectWho(prev, "Signed in as alice");
      await page.waitForSelector('#things-state[data-state="live"]');
      const [cls, got] = await call("thing_service.create_thing",
        JSON.stringify([[], { name }]));
      same(cls, "result", "create result class: " + got);
      await page.waitForSelector(`#things li[data-name="${name}"]`);
      await page.fill("#pub-topic", TOPIC);
      await page.click("#pub-btn");
      await page.waitForSelector("#pub-message.error");
      same(await text("#pub-message"), "Not allowed (403): your credentials lack the scope " +
        "events:publish to publish to " + TOPIC + ".", "publish message");
    });

    await step("the credential is kept in memory only", async () => {
      const r = await page.evaluate(() => ({
        local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
        field: document.getElementById("signin-token").value,
      }));
      same(JSON.stringify(r), JSON.stringify({ local: 0, session: 0, cookie: "", field: "" }),
        "storage");
    });

    await step("a gateway restart: the page reconnects signed in and subscribes again", async () => {
      const prev = await sessionId();
      console.log("RESTART");
      const cmd = await nextLine();
      if (cmd !== "RESTARTED") throw new Error("unexpected command " + cmd);
      await expectWho(prev, "Signed in as alice");
      same(await text("#auth-message"), "", "auth message");
      await page.waitForSelector('#things-state[data-state="live"]');
      await page.waitForSelector(`#things li[data-name="${name}"]`);
      const [cls, got] = await call("thing_service.create_thing",
        JSON.stringify([[], { name: name + "-again" }]));
      same(cls, "result", "create result class: " + got);
      await page.waitForSelector(`#things li[data-name="${name}-again"]`);
      // The subscription made anonymously before signing in is back in
      // the new session: an event published over HTTP shows.
      await page.waitForSelector(`#subscriptions li[data-topic="${TOPIC}"]`);
      await page.waitForFunction((topic) => {
        const p = window.natsrpcPage, sub = p.subscriptions[topic];
        return sub && p.connection.session && sub.session === p.connection.session;
      }, TOPIC);
      const r = await postTo(GATEWAY_URL, "/websocket_test.hello_websocket", '[["again"], {}]');
      same(r.status + " " + r.body, "200 [[], {}]", "POST hello_websocket");
      await page.waitForSelector(`#events li[data-topic="${TOPIC}"][data-args='["again"]']`);
    });

    await step("a token revoked while the page reconnects: it goes on anonymously", async () => {
      const prev = await sessionId();
      console.log("REVOKE");
      const cmd = await nextLine();
      if (cmd !== "RESTARTED") throw new Error("unexpected command " + cmd);
      await expectWho(prev, "Not signed in");
      same(await text("#auth-message"),
        "Signed out: the gateway refused the token: unknown bearer token", "message");
      same(await page.getAttribute("#auth-message", "class"), "message error", "message class");
      await expectDenied("thing_service.create_thing", '[[], {"name": "anon"}]',
        "Not authorized (401): sign in to call thing_service.create_thing.");
      await page.waitForFunction((topic) => {
        const p = window.natsrpcPage, sub = p.subscriptions[topic];
        return sub && p.connection.session && sub.session === p.connection.session;
      }, TOPIC);
    });

    await step("screenshots", async () => {
      const laptop = path.join(SHOTS, "natsrpc-page-auth-laptop.png");
      await page.screenshot({ path: laptop, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      const phone = path.join(SHOTS, "natsrpc-page-auth-phone.png");
      await page.screenshot({ path: phone, fullPage: true });
      const overflow = await page.evaluate(() =>
        document.documentElement.scrollWidth > window.innerWidth + 1);
      if (overflow) throw new Error("the page scrolls sideways at 390 px");
      console.log("     %s\n     %s", laptop, phone);
    });

    const real = errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
    if (real.length) throw new Error("errors in the page:\n  " + real.join("\n  "));
  } catch (e) {
    failed = true;
    if (errors.length) console.log("page errors:\n  " + errors.join("\n  "));
  } finally {
    await browser.close();
  }
  console.log(failed ? "page_auth: FAILED" : "page_auth: all steps passed");
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
