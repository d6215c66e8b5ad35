-- email-domains: a tenant's users must have an address at one of its
-- domains (config.domains; config.allowSubdomains lets eu.example.com in
-- for example.com). The address is stored in lower case.

local function domain_of(email)
  return email:match("^[^@%s]+@([%w%.%-]+)$")
end

local function allowed(domain, config)
  for _, d in ipairs(config.domains) do
    d = d:lower()
    if domain == d then return true end
    if config.allowSubdomains and domain:sub(-(#d + 1)) == "." .. d then return true end
  end
  return false
end

local function check(ctx, user)
  local domain = domain_of(user.email or "")
  if not domain then
    return nil, "the e-mail address has no domain"
  end
  domain = domain:lower()
  if not allowed(domain, ctx.config) then
    return nil, "e-mail addresses at " .. domain .. " are not allowed here; use one at "
      .. table.concat(ctx.config.domains, ", ")
  end
  user.email = user.email:lower()
  return user
end

return {
  before_user_create = check,
  -- The user as the update would leave it: checked only when the address changes.
  before_user_update = function(ctx, user, patch)
    if patch.email == nil then return user end
    return check(ctx, user)
  end,
}
