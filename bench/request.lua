-- One fixed request from the environment: METHOD (default GET), AUTH (the Authorization header, optional)
-- and BODY (a form body, optional). Used for userinfo (GET, Bearer) and introspection (POST, Basic + token=...).
wrk.method = os.getenv("METHOD") or "GET"
local auth = os.getenv("AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local body = os.getenv("BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
