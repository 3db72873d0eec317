-- wrk script for bench/delivery_bench.sh: bench/batch.lua (100 events of ~900 bytes per
-- /v1/batch, unique messageIds), each connection pausing DELAY_MS between requests, so the load
-- is about connections × 100 / (DELAY_MS + response time) events per millisecond.
dofile("bench/batch.lua")

local pause = tonumber(os.getenv("DELAY_MS") or "0")

function delay()
  return pause
end
