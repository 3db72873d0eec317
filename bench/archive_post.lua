-- wrk script for bench/archive_bench.sh: POSTs one fixed webhook batch (a JSON array of events
-- taken from the archive), the baseline for replay throughput into the same sink.
local path = os.getenv("SY_BATCH_FILE")
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
