-- wrk script: GET PREFIX .. KEY for the keys of a file, in turn; with an
-- API_KEY, every request sends it as X-API-Key with Accept:
-- application/x-ndjson (the DNSDB API, bench/dnsdb/run.sh).
--
--   wrk -t2 -c16 -d10s --latency -s bench/rotate.lua URL -- KEYS_FILE [PREFIX [API_KEY]]
--
-- Every thread loads the file and starts at its own offset, so the threads
-- do not ask for the same key at the same moment. done() prints one line
-- starting with "JSON " that bench/query.sh and bench/dnsdb/run.sh parse
-- (latencies in µs).

local keys = {}
local next_key = 1
local prefix = "/query/"
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local file = args[1] or error("usage: -- KEYS_FILE [PREFIX [API_KEY]]")
  prefix = args[2] or prefix
  if args[3] then
    wrk.headers["X-API-Key"] = args[3]
    wrk.headers["Accept"] = "application/x-ndjson"
  end
  for line in io.lines(file) do
    if #line > 0 then
      keys[#keys + 1] = line
    end
  end
  if #keys == 0 then
    error("no keys in " .. file)
  end
  -- 7919 * 104729: two primes, so offsets spread over the file.
  next_key = ((thread_index or 0) * 7919 * 104729) % #keys + 1
end

function request()
  local path = prefix .. keys[next_key]
  next_key = next_key + 1
  if next_key > #keys then
    next_key = 1
  end
  return wrk.format(nil, path)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
