-- Replays a file of distinct requests, one per line ("PATH BODY"; BODY may be empty), so
-- that every reveal takes a different secret. Thread i of n sends lines i, i+n, i+2n, ...
-- When a thread runs out it stops and reports itself as exhausted (the run is then void).
-- Arguments: threads file content-type.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require("report")

local lines = {}
local position = 0
exhausted = 0

function init(args)
  local thread_count = tonumber(args[1])
  local headers = { ["Content-Type"] = args[3] }
  local index = 0
  for line in io.lines(args[2]) do
    if index % thread_count == thread_index then
      local path, body = line:match("^(%S+) ?(.*)$")
      table.insert(lines, wrk.format("POST", path, headers, body))
    end
    index = index + 1
  end
end

function request()
  position = position + 1
  if position > #lines then
    exhausted = 1
    wrk.thread:stop()
    return lines[#lines]
  end
  return lines[position]
end
