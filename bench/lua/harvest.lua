-- Creates secrets and writes one replayable reveal request per created secret, so a later
-- run can reveal each exactly once. Each thread writes its own file, prefix.N, and creates
-- prefix.done.N once it has its share.
-- Arguments: threads kind (burnlink|snappass) output-prefix count method path content-type
-- body [accept].
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require("report")

local out
local done_file
local wanted = 0
local got = 0
local kind

function init(args)
  kind = args[2]
  out = io.open(args[3] .. "." .. thread_index, "w")
  done_file = args[3] .. ".done." .. thread_index
  wanted = math.ceil(tonumber(args[4]) / tonumber(args[1]))
  wrk.method = args[5]
  wrk.path = args[6]
  wrk.headers["Content-Type"] = args[7]
  wrk.body = args[8]
  if args[9] then
    wrk.headers["Accept"] = args[9]
  end
  request_text = wrk.format()
end

function request()
  return request_text
end

function response(status, headers, body)
  if got >= wanted or (status ~= 201 and status ~= 200) then
    return
  end
  local line
  if kind == "burnlink" then
    local id = body:match('"id":"([%w_-]+)"')
    local key = body:match('"url":"[^"#]*#([%w_-]+)"')
    if id and key then
      line = "/api/v1/secrets/" .. id .. "/reveal " .. '{"key":"' .. key .. '"}'
    end
  else
    local path = body:match('"link":"https?://[^/"]+(/[^"]+)"')
    if path then
      line = path .. " "
    end
  end
  if line then
    out:write(line, "\n")
    got = got + 1
    if got % 1000 == 0 then
      out:flush()
    end
    if got >= wanted then
      out:close()
      -- wrk itself runs until its duration ends; bench/ interrupts it once every thread is done.
      io.open(done_file, "w"):close()
      wrk.thread:stop()
    end
  end
end
