-- chat-notifier: on each user.created event, one message to the tenant's
-- chat webhook (config.webhookUrl, a host in permissions.http). A chat that
-- fails (no answer, or not 2xx) fails the event, so on_event tries it again
-- later and, after plugins.event-attempts, keeps it as a dead letter.

local function message(ctx, user)
  local who = user.name ~= "" and (user.name .. " <" .. user.email .. ">") or user.email
  local text = "New user in " .. ctx.tenantId .. ": " .. who
  local body = {text = text}
  if ctx.config.channel then body.channel = ctx.config.channel end
  return body
end

return {
  on_event = function(ctx, event)
    if event.type ~= "user.created" then return end
    local user = event.userChanged.state
    local res = colony.http.request{
      method = "POST",
      url = ctx.config.webhookUrl,
      body = message(ctx, user),
      timeout = 3000,
    }
    if res.status < 200 or res.status > 299 then
      error("the chat answered " .. res.status .. ": " .. (res.body or ""):sub(1, 200))
    end
    colony.log("info", "posted " .. user.id .. " to the chat")
  end,
}
