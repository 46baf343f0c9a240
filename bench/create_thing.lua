-- wrk script for bench/things: POST thing_service.create_thing with a new
-- name on every request, and print one machine-readable line at the end
-- (latencies in milliseconds; errors = socket errors + non-2xx answers).
--   wrk -t1 -c64 -d10s --latency -s bench/create_thing.lua http://127.0.0.1:PORT/thing_service.create_thing
local prefix = string.format("bench %x", math.floor(os.time() % 0x100000))
local n = 0
local headers = {["Content-Type"] = "application/json"}

request = function()
  n = n + 1
  return wrk.format("POST", nil, headers, '[[], {"name": "' .. prefix .. " " .. n .. '"}]')
end

done = function(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end
