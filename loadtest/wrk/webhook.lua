-- webhook.lua - wrk script: tiny generic webhooks (one JSON event each), pre-generated.
--
--   wrk -t1 -c64 -d10s --latency -s loadtest/wrk/webhook.lua http://127.0.0.1:18082/v1/webhook/default
--
-- 64 distinct bodies are built once per thread at init (never in request()): a mix of error,
-- warning and info messages, like an application's logger posting each line.
-- done() prints one machine-readable line:
--   RESULT req_s=.. p50_ms=.. p90_ms=.. p99_ms=.. requests=.. non2xx=.. sock_errors=..

local bodies = {}
local requests = {}
local idx = 0

local messages = {
  "ERROR payment %d failed: connection refused to 10.0.%d.7:5432",
  "WARN retrying request %d (attempt %d of 5)",
  "INFO user %d logged in from 192.168.%d.20",
  "ERROR Task timed out after %d.%d seconds",
  "java.lang.IllegalStateException: order %d in state %d",
  "INFO GET /api/items/%d 200 %dms",
}

function init(args)
  for i = 1, 64 do
    local fmt = messages[(i % #messages) + 1]
    local msg = string.format(fmt, i * 7919 % 100000, i % 250)
    bodies[i] = string.format('{"message":"%s","service":"checkout","timestamp":%d}', msg, 1764201600000 + i)
    requests[i] = wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, bodies[i])
  end
end

function request()
  idx = idx % #requests + 1
  return requests[idx]
end

function done(summary, latency, requests_)
  local secs = summary.duration / 1e6
  local non2xx = summary.errors.status
  local sock = summary.errors.connect + summary.errors.read + summary.errors.write
  io.write(string.format("RESULT req_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d sock_errors=%d timeouts=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, summary.requests, non2xx, sock, summary.errors.timeout))
end
