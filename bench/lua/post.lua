-- A fixed JSON POST: body from BENCH_BODY, optional Bearer token from BENCH_TOKEN, optional Cookie from BENCH_COOKIE.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token and #token > 0 then wrk.headers["Authorization"] = "Bearer " .. token end
local cookie = os.getenv("BENCH_COOKIE")
if cookie and #cookie > 0 then wrk.headers["Cookie"] = cookie end
