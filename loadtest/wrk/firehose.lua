-- firehose.lua - wrk script: replays Firehose HTTP-endpoint bodies (loadtest/bench_data.py firehose).
--
--   FIREHOSE_BODIES=/tmp/faultline-bench/firehose.jsonl \
--     wrk -t1 -c64 -d8s --timeout 30s --latency -s loadtest/wrk/firehose.lua http://127.0.0.1:18095/v1/firehose
--
-- Each thread loads the bodies at init and cycles through them; every request carries a fresh
-- X-Amz-Firehose-Request-Id (faultline de-duplicates retries: a repeated id would not be counted).
-- done() prints one machine-readable line:
--   RESULT req_s=.. p50_ms=.. p90_ms=.. p99_ms=.. requests=.. non2xx=.. sock_errors=.. timeouts=..

local bodies = {}
local idx = 0
local seq = 0
local prefix = ""

function init(args)
  local path = os.getenv("FIREHOSE_BODIES") or error("FIREHOSE_BODIES is not set")
  for line in io.lines(path) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  -- Unique per run: LuaJIT's math.random is unseeded (the same number in every run), and a
  -- second run against the same server (after a warm-up) would replay the first one's ids, which
  -- are answered from the dedupe table without being counted.
  prefix = string.format("%d-%s-", os.time(), tostring({}):match("0x(%x+)") or tostring(os.clock()))
end

function request()
  idx = idx % #bodies + 1
  seq = seq + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Amz-Firehose-Protocol-Version"] = "1.0",
    ["X-Amz-Firehose-Request-Id"] = prefix .. seq,
  }, bodies[idx])
end

function done(summary, latency, requests_)
  local secs = summary.duration / 1e6
  local non2xx = summary.errors.status
  local sock = summary.errors.connect + summary.errors.read + summary.errors.write
  io.write(string.format("RESULT req_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d sock_errors=%d timeouts=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, summary.requests, non2xx, sock, summary.errors.timeout))
end
