-- POST /auth/refresh with rotation: each thread has one connection and one session, and sends the refreshToken of
-- each answer with its next request. A refused rotation breaks the chain, so errors show as non-2xx answers.
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  threads[#threads + 1] = thread
end
local token
function init(args)
  local lines = {}
  local f = assert(io.open(os.getenv("BENCH_DATA"), "r"))
  for line in f:lines() do if #line > 0 then lines[#lines + 1] = line end end
  f:close()
  token = lines[index]
end
function request()
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, '{"refreshToken":"' .. token .. '"}')
end
function response(status, headers, body)
  local next_token = body:match('"refreshToken":"([^"]+)"')
  if status == 200 and next_token then token = next_token end
end
