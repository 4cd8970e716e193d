-- POST a password grant for a random user. SCALE_USERS > 0: one of the seeded users
-- user0000000.. (user N has the password Bench-Passw0rd-(N % 4); every 1000th is disabled and
-- skipped). SCALE_USERS = 0: one of the template users bench0..bench3 (the fresh database).
local users = tonumber(os.getenv("SCALE_USERS") or "0")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function init()
  math.randomseed(os.time())
end

function request()
  local name, k
  if users > 0 then
    local n = math.random(0, users - 1)
    if n % 1000 == 999 then n = n - 1 end
    name, k = string.format("user%07d", n), n % 4
  else
    k = math.random(0, 3)
    name = "bench" .. k
  end
  return wrk.format(nil, nil, nil,
    "grant_type=password&username=" .. name .. "&password=Bench-Passw0rd-" .. k)
end
