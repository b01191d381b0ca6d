-- Merge one cart into another (anonymous cart into the user's at login), adding
-- quantities; a sum above the cap is clamped to the cap, and items new to the target
-- beyond its max distinct items are dropped. The source cart is deleted.
-- KEYS[1]: source cart hash (item -> quantity)
-- KEYS[2]: target cart hash
-- ARGV[1]: cap (integer)
-- ARGV[2]: target ttl (milliseconds, integer > 0)
-- ARGV[3]: max distinct items in the target (integer > 0)
-- Returns: number of distinct items moved (dropped ones not counted).
-- Replay-safe: a second run finds the source empty and changes nothing.
-- idempotent: yes
local src = redis.call('HGETALL', KEYS[1])
if #src == 0 then
  return 0
end
local cap = tonumber(ARGV[1])
local max_items = tonumber(ARGV[3])
local room = max_items - redis.call('HLEN', KEYS[2])
local moved = 0
for i = 1, #src, 2 do
  local cur = redis.call('HGET', KEYS[2], src[i])
  if cur or room > 0 then
    if not cur then room = room - 1 end
    local q = tonumber(cur or '0') + tonumber(src[i + 1])
    if q > cap then q = cap end
    redis.call('HSET', KEYS[2], src[i], q)
    moved = moved + 1
  end
end
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return moved
