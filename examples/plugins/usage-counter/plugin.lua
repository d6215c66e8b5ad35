-- usage-counter: every event of the tenant adds one to its type's count
-- (kv key "count:<type>"); the http hook serves them.
--   GET    .../x/usage-counter/counts          {"counts": {"user.created": 3, ...}, "total": 5}
--   GET    .../x/usage-counter/counts/<type>   {"type": ..., "count": n}
--   DELETE .../x/usage-counter/counts          owners and admins: the counts start again

local PREFIX = "count:"

local function all_counts()
  local counts, total, after = {}, 0, nil
  repeat
    local page = colony.kv.list{prefix = PREFIX, after = after, limit = 100}
    for _, e in ipairs(page.items) do
      counts[e.key:sub(#PREFIX + 1)] = e.value
      total = total + e.value
    end
    after = page.next
  until after == nil
  return counts, total
end

local function json(status, body)
  return {status = status, headers = {["content-type"] = "application/json"}, body = body}
end

local function is_admin(caller)
  for _, r in ipairs(caller.roles or {}) do
    if r == "owner" or r == "admin" or r == "platform_admin" then return true end
  end
  return false
end

return {
  on_event = function(ctx, event)
    local key = PREFIX .. event.type
    colony.kv.set(key, (colony.kv.get(key) or 0) + 1)
  end,

  http = function(ctx, req)
    local kind = req.path:match("^/?counts/?(.*)$")
    if kind == nil then
      return json(404, {title = "Not found", detail = "try GET counts"})
    end
    if req.method == "GET" and kind == "" then
      local counts, total = all_counts()
      return json(200, {counts = counts, total = total})
    elseif req.method == "GET" then
      return json(200, {type = kind, count = colony.kv.get(PREFIX .. kind) or 0})
    elseif req.method == "DELETE" and kind == "" then
      if not is_admin(req.caller) then
        return json(403, {title = "Forbidden", detail = "only owners and admins reset the counts"})
      end
      local n, after = 0, nil
      repeat
        local page = colony.kv.list{prefix = PREFIX, after = after, limit = 100}
        for _, e in ipairs(page.items) do colony.kv.delete(e.key) n = n + 1 end
        after = page.next
      until after == nil
      return json(200, {reset = n})
    end
    return json(405, {title = "Method not allowed", detail = "GET or DELETE"})
  end,
}
