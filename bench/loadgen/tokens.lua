-- wrk script: a bearer token on every request, taken from a file (one a line).
-- With one token in the file it is reused (warm); with many, each is used once (cold) and the
-- thread stops when they run out (so no token is sent twice; wrk itself still waits out -d, so
-- size the file for the run and treat "exhausted" as a flag). done() prints one line:
-- BENCH_JSON {...} with the counts and the 50th/99th latency percentiles in microseconds.
--
-- Usage: wrk -t1 -c32 -d5s -s tokens.lua http://127.0.0.1:3000/secure-route -- tokens.txt

local tokens = {}
local reuse = true
sent = 0
exhausted = false

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      tokens[#tokens + 1] = line
    end
  end
  reuse = #tokens == 1
end

function request()
  sent = sent + 1
  local index = 1
  if not reuse then
    index = sent
    if index > #tokens then
      exhausted = true
      wrk.thread:stop()
      index = #tokens
    end
  end
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[index] })
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local ran_out = false
  for _, thread in ipairs(threads) do
    if thread:get("exhausted") then
      ran_out = true
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
      '"timeouts":%d,"p50_us":%d,"p99_us":%d,"exhausted":%s}\n',
    summary.requests, summary.duration, errors.status, errors.connect + errors.read + errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(99), tostring(ran_out)))
end
