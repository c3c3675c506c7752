-- otlp.lua - wrk script: replays OTLP/HTTP logs requests (loadtest/bench_data.py otlp).
--
--   OTLP_BODIES=/tmp/faultline-bench/otlp.bin \
--     wrk -t1 -c64 -d8s --timeout 30s --latency -s loadtest/wrk/otlp.lua http://127.0.0.1:18095/v1/logs
--
-- The file holds "<length>\n<bytes>" per body (protobuf is binary: no line framing). done()
-- prints the same RESULT line as firehose.lua.

local bodies = {}
local idx = 0

function init(args)
  local path = os.getenv("OTLP_BODIES") or error("OTLP_BODIES is not set")
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    if not nl then break end
    local len = tonumber(data:sub(pos, nl - 1))
    bodies[#bodies + 1] = data:sub(nl + 1, nl + len)
    pos = nl + 1 + len
  end
  assert(#bodies > 0, "no bodies in " .. path)
end

function request()
  idx = idx % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-protobuf"}, bodies[idx])
end

function done(summary, latency, requests_)
  local secs = summary.duration / 1e6
  local non2xx = summary.errors.status
  local sock = summary.errors.connect + summary.errors.read + summary.errors.write
  io.write(string.format("RESULT req_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d sock_errors=%d timeouts=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, summary.requests, non2xx, sock, summary.errors.timeout))
end
