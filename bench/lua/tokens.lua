-- GET with a Bearer token taken round-robin from BENCH_DATA (one token a line): many sessions, not one.
local tokens = {}
local i = 0
function init(args)
  local f = assert(io.open(os.getenv("BENCH_DATA"), "r"))
  for line in f:lines() do if #line > 0 then tokens[#tokens + 1] = line end end
  f:close()
  i = math.random(#tokens)
end
function request()
  i = i % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
