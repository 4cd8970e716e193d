-- GET a console lookup for a random (user, token) pair from $TOKENS_FILE (lines "user token"):
-- LOOKUP=records: the user's newest login records (KubeSphere's loginrecords, 10 per page);
-- LOOKUP=userinfo: /oauth/userinfo (the session's grant and the user, by key).
local kind = os.getenv("LOOKUP")
local logins = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  local user, token = line:match("^(%S+) (%S+)$")
  if user then logins[#logins + 1] = { user, "Bearer " .. token } end
end

function init()
  math.randomseed(os.time())
end

function request()
  local l = logins[math.random(#logins)]
  local path = "/oauth/userinfo"
  if kind == "records" then
    path = "/kapis/iam.kubesphere.io/v1alpha2/users/" .. l[1] .. "/loginrecords?limit=10"
  end
  return wrk.format("GET", path, { Authorization = l[2] })
end
