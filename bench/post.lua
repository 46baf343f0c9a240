-- wrk script for bench/run: POST the contract's example call and print one
-- machine-readable line at the end (latencies in milliseconds).
--   wrk -t1 -c64 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT/greeting_service.hello
-- WRK_BODY in the environment replaces the body (bench/auth calls other rpcs).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or '[["Bob"], {"last_name": "Ross"}]'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end
