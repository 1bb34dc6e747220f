-- POST /auth/code/verify: each thread walks its own slice of "email code" pairs from BENCH_DATA, each used once.
local threads_total = tonumber(os.getenv("BENCH_THREADS"))
local ids = 0
function setup(thread)
  ids = ids + 1
  thread:set("thread_id", ids)
end
local pairs_list = {}
local i = 0
function init(args)
  local f = assert(io.open(os.getenv("BENCH_DATA"), "r"))
  local n = 0
  for line in f:lines() do
    n = n + 1
    if #line > 0 and n % threads_total == thread_id - 1 then pairs_list[#pairs_list + 1] = line end
  end
  f:close()
end
function request()
  i = i + 1
  local email, code = pairs_list[(i - 1) % #pairs_list + 1]:match("^(%S+) (%S+)$")
  local body = string.format('{"email":"%s","code":"%s"}', email, code)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
