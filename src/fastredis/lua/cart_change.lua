-- Add to, or set, the quantity of one cart item, within a cap.
-- KEYS[1]: cart hash (item -> quantity)
-- KEYS[2]: applied-operation set of the cart (op ids of recent adds, for replay safety)
-- ARGV[1]: "add" or "set"
-- ARGV[2]: item
-- ARGV[3]: quantity (integer >= 0; for "add" the amount added)
-- ARGV[4]: cap (integer; a stored quantity may not exceed it)
-- ARGV[5]: cart ttl (milliseconds, integer > 0)
-- ARGV[6]: operation id (unique per call; a replayed "add" with the same id is not applied twice)
-- ARGV[7]: op-id memory (milliseconds)
-- ARGV[8]: max distinct items in the cart (integer > 0)
-- Returns: the item's quantity after the change; -1 if it would exceed the cap, -2 if
--          a new item would take the cart past ARGV[8] items (nothing changed either way).
-- idempotent: yes
local qty = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local max_items = tonumber(ARGV[8])
local function too_many()
  return qty > 0 and redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0
    and redis.call('HLEN', KEYS[1]) >= max_items
end
if ARGV[1] == 'add' then
  if redis.call('SADD', KEYS[2], ARGV[6]) == 0 then
    return tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
  if cur + qty > cap then
    redis.call('SREM', KEYS[2], ARGV[6])
    return -1
  end
  if too_many() then
    redis.call('SREM', KEYS[2], ARGV[6])
    return -2
  end
  qty = cur + qty
elseif too_many() then
  return -2
end
if qty == 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], qty)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return qty
