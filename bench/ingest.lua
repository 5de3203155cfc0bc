-- wrk script: POST native run reports with unique ids spread across 100 jobs.
-- Environment: BW_TOKEN (Bearer token), BW_PREFIX (makes ids unique across runs),
-- BW_BASE (epoch seconds of the first run's start).
local token = os.getenv("BW_TOKEN") or ""
local prefix = os.getenv("BW_PREFIX") or "r"
local base = tonumber(os.getenv("BW_BASE") or "1767225600")
local counter = 0
thread_no = 0
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

local body_fmt = '{"id":"%s-%d-%d","job":"bench-job-%03d","host":"bench","status":"%s",'
  .. '"started_at":%d,"duration_s":%d,"size_bytes":%d,"files":%d,"tool":"restic",'
  .. '"phases":[{"name":"prepare","duration_s":1},{"name":"snapshot","duration_s":%d},'
  .. '{"name":"upload","duration_s":7},{"name":"verify","duration_s":3}]}'

function request()
  counter = counter + 1
  local job = counter % 100
  local status = (counter % 20 == 0) and "failed" or "success"
  local started = base + counter * 7 + thread_no
  local body = string.format(body_fmt, prefix, thread_no, counter, job, status,
    started, 40 + counter % 50, 1000000 + counter * 13, 1000 + counter % 700, 20 + counter % 30)
  return wrk.format(nil, "/api/v1/runs", nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("BENCH requests=%d duration_us=%d non2xx=%d errors_connect=%d "
    .. "errors_read=%d errors_write=%d errors_timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
