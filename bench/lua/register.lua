-- POST /auth/register with a new email each time (thread id, counter and a per-run nonce keep them unique).
local counter = 0
local ids = 0
function setup(thread)
  ids = ids + 1
  thread:set("thread_id", ids)
end
local nonce = os.getenv("BENCH_NONCE")
-- BENCH_EXTRA: more JSON members for the body (Better Auth's sign-up needs a name), e.g. `,"name":"Bench"`.
local extra = os.getenv("BENCH_EXTRA") or ""
function request()
  counter = counter + 1
  local body = string.format('{"email":"reg-%s-%d-%d@example.com","password":"correct-horse-battery-staple"%s}', nonce, thread_id, counter, extra)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
