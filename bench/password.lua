-- POST a password grant for $BENCH_USER / $BENCH_PASSWORD, with the trusted client $BENCH_CLIENT_ID /
-- $BENCH_CLIENT_SECRET in the body (client_secret_post) when set.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=password&username=" .. os.getenv("BENCH_USER") .. "&password=" .. os.getenv("BENCH_PASSWORD")
local id = os.getenv("BENCH_CLIENT_ID")
if id and id ~= "" then
  wrk.body = wrk.body .. "&client_id=" .. id .. "&client_secret=" .. (os.getenv("BENCH_CLIENT_SECRET") or "")
end
