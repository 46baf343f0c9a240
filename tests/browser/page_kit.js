// page_kit.js: what the page tests share besides the browser (chromium.js):
// a JSON POST to the gateway, named steps, and lines from the test runner
// on stdin (the python side says when it has restarted a process).
"use strict";

const http = require("http");
const readline = require("readline");

// POST body (a string) to urlPath of base; resolves {status, body}.
function post(base, urlPath, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(urlPath, base),
      { method: "POST", headers: { "Content-Type": "application/json" } }, (res) => {
        let data = "";
        res.on("data", (c) => { data += c; });
        res.on("end", () => resolve({ status: res.statusCode, body: data }));
      });
    req.on("error", reject);
    req.end(body);
  });
}

// Runs fn as the step name: prints "ok" or "FAIL" with the time, rethrows.
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log("ok   %s (%d ms)", name, Date.now() - t0);
  } catch (e) {
    console.log("FAIL %s: %s", name, e && e.message ? e.message : e);
    throw e;
  }
}

// Starts reading stdin; returns nextLine(), a promise of the next line
// (lines that came before anyone asked are kept in order).
function stdinLines() {
  const lines = [];
  let waiting = null;
  readline.createInterface({ input: process.stdin }).on("line", (l) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(l);
    } else {
      lines.push(l);
    }
  });
  return function nextLine() {
    if (lines.length) return Promise.resolve(lines.shift());
    return new Promise((resolve) => { waiting = resolve; });
  };
}

module.exports = { post, step, stdinLines };
