-- POST /auth/register with a new email each time (thread id, counter and a per-run nonce keep them unique).
local counter = 0
local ids = 0
function setup(thread)
  ids = ids + 1
  thread:set("thread_id", ids)
end
local nonce = os.getenv("BENCH_NONCE")
function request()
  counter = counter + 1
  local body = string.format('{"email":"reg-%s-%d-%d@example.com","password":"correct-horse-battery-staple"}', nonce, thread_id, counter)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
