-- GET with a Cookie header taken round-robin from BENCH_DATA (one header value a line): many sessions, not one.
-- BENCH_LIMIT, when set, uses only the first that many lines.
local cookies = {}
local i = 0
function init(args)
  local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
  local f = assert(io.open(os.getenv("BENCH_DATA"), "r"))
  for line in f:lines() do
    if #line > 0 and (limit == 0 or #cookies < limit) then cookies[#cookies + 1] = line end
  end
  f:close()
  i = math.random(#cookies)
end
function request()
  i = i % #cookies + 1
  return wrk.format("GET", nil, { ["Cookie"] = cookies[i] })
end
