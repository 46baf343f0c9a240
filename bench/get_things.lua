-- wrk script for bench/things: POST thing_service.get_things (first page of
-- 100) and print one machine-readable line at the end, as create_thing.lua.
--   wrk -t1 -c64 -d10s --latency -s bench/get_things.lua http://127.0.0.1:PORT/thing_service.get_things
wrk.method = "POST"
wrk.body = '[[], {"limit": 100}]'
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
