-- wrk script: one Segment track event per request, each with a unique messageId.
-- Usage: wrk -s track.lua http://127.0.0.1:PORT/v1/track
local counter = 0
thread_id = 0

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  math.randomseed(os.time() + thread_id * 7919)
  run_id = tostring(math.random(1, 1e9))
end

local props = '"properties":{"plan":"pro","revenue":42.5,"currency":"USD","path":"/checkout/complete","referrer":"https://www.example.com/cart","title":"Checkout","coupon":"SPRING","items":3},' ..
  '"context":{"library":{"name":"analytics-node","version":"2.1.0"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","locale":"en-US","timezone":"Europe/Paris"}'

function request()
  counter = counter + 1
  local body = '{"userId":"user-' .. (counter % 1000) .. '","event":"Order Completed",' .. props ..
    ',"messageId":"' .. run_id .. '-' .. thread_id .. '-' .. counter .. '","timestamp":"2024-05-01T12:00:00.000Z"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Basic d2tfYmVuY2g6"}, body)
end
