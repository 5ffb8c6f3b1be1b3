-- W7 (shared/BENCHMARKS.md): wrk POSTs a fixed allowed request to /v1/preflight.
-- Each granted lease is released by a later request of the same wrk thread (POST /v1/leases/{id}/release),
-- so admission slots and the lease registry stay flat; W7_RELEASE=0 turns that off.
-- Env: W7_USER, W7_ORG (default user_alice / org_acme from examples/data.json), W7_OPERATION (execute).
local user = os.getenv("W7_USER") or "user_alice"
local org = os.getenv("W7_ORG") or "org_acme"
local op = os.getenv("W7_OPERATION") or "execute"
local release = os.getenv("W7_RELEASE") ~= "0"
local body = string.format('{"operation":"%s","subject":{"user":"%s","org":"%s"}}', op, user, org)

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

local preflight_req
local pending = {}
counts = {}  -- global: read by done() through thread:get

function init(args)
    local headers = {["Content-Type"] = "application/json"}
    preflight_req = wrk.format("POST", "/v1/preflight", headers, body)
    counts = {ok = 0, released = 0, other = 0}
end

function request()
    if release and #pending > 0 then
        local id = table.remove(pending)
        return wrk.format("POST", "/v1/leases/" .. id .. "/release", nil, "")
    end
    return preflight_req
end

function response(status, headers, resp)
    if status == 200 then
        -- A release answer starts with {"released":true; a decision with {"allowed":. Looking at the first bytes
        -- only keeps wrk (which shares the two cores with the server) from scanning every ~1 KB decision body.
        if resp:sub(1, 16) == '{"released":true' then
            counts.released = counts.released + 1
        else
            counts.ok = counts.ok + 1
            local id = resp:match('"lease_id":"([^"]+)"')
            if id and release then table.insert(pending, id) end
        end
    else
        counts.other = counts.other + 1
    end
end

-- Without releases, leave the responses unread by Lua (cheaper for wrk, which shares the cores): wrk still
-- reports non-2xx answers itself ("Non-2xx or 3xx responses").
if not release then
    response = nil
    request = nil
    wrk.method = "POST"
    wrk.path = "/v1/preflight"
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
    local ok, released, other = 0, 0, 0
    for _, t in ipairs(threads) do
        local c = t:get("counts")
        if c then
            ok = ok + c.ok
            released = released + c.released
            other = other + c.other
        end
    end
    if not release then
        -- No response() callback in this mode: every answer that is not a 2xx is counted by wrk itself.
        other = summary.errors.status
        ok = summary.requests - other
    end
    local secs = summary.duration / 1e6
    io.write(string.format("W7 requests/s %.0f (preflights %d, releases %d, non-200 %d, socket errors %d)\n",
        summary.requests / secs, ok, released, other,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
    io.write(string.format("W7 latency p50 %.0f us, p99 %.0f us, max %.0f us\n",
        latency:percentile(50), latency:percentile(99), latency.max))
end
