-- wrk script: /v1/batch with 100 events of about 900 bytes each, unique messageIds.
local counter = 0
thread_id = 0

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

local item_head = '{"type":"track","userId":"user-42","event":"Product Viewed","properties":{' ..
  '"product_id":"507f191e810c19729de860ea","sku":"G-32","category":"Games","name":"Monopoly: 3rd Edition",' ..
  '"brand":"Hasbro","variant":"200 pieces","price":18.99,"quantity":1,"coupon":"MAYDEALS","position":3,' ..
  '"url":"https://www.example.com/product/path","image_url":"https://www.example.com/product/path.jpg",' ..
  '"description":"' .. string.rep("a board game for the whole family ", 6) .. '"},' ..
  '"context":{"library":{"name":"analytics-node","version":"2.1.0"},"ip":"203.0.113.7",' ..
  '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",' ..
  '"locale":"en-US","timezone":"Europe/Paris"},"timestamp":"2024-05-01T12:00:00.000Z","messageId":"'

function init(args)
  counter = 0
  math.randomseed(os.time() + thread_id * 7919)
  run_id = tostring(math.random(1, 1e9))
end

function request()
  counter = counter + 1
  local parts = {'{"batch":['}
  local prefix = run_id .. '-' .. thread_id .. '-' .. counter .. '-'
  for i = 1, 100 do
    if i > 1 then parts[#parts + 1] = ',' end
    parts[#parts + 1] = item_head
    parts[#parts + 1] = prefix .. i
    parts[#parts + 1] = '"}'
  end
  parts[#parts + 1] = '],"sentAt":"2024-05-01T12:00:01.000Z"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Basic d2tfYmVuY2g6"}, table.concat(parts))
end
