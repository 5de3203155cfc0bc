-- wrk script: push a small metric group to Prometheus Pushgateway, spread across 100 jobs
-- (the peer for the ingest benchmark: the same shape of work, no durability promise).
counter = 0

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "text/plain; version=0.0.4"
end

local body_fmt = "# TYPE backup_duration_seconds gauge\nbackup_duration_seconds %d\n"
  .. "# TYPE backup_size_bytes gauge\nbackup_size_bytes %d\n"
  .. "# TYPE backup_last_success_timestamp_seconds gauge\n"
  .. "backup_last_success_timestamp_seconds %d\n"

function request()
  counter = counter + 1
  local path = string.format("/metrics/job/bench-job-%03d/instance/bench", counter % 100)
  local body = string.format(body_fmt, 40 + counter % 50, 1000000 + counter * 13,
    1767225600 + counter)
  return wrk.format(nil, path, nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("BENCH requests=%d duration_us=%d non2xx=%d errors_connect=%d "
    .. "errors_read=%d errors_write=%d errors_timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
