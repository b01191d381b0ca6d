-- Merge one cart into another (anonymous cart into the user's at login), adding
-- quantities; a sum above the cap is clamped to the cap. The source cart is deleted.
-- KEYS[1]: source cart hash (item -> quantity)
-- KEYS[2]: target cart hash
-- ARGV[1]: cap (integer)
-- ARGV[2]: target ttl (milliseconds, integer > 0)
-- Returns: number of distinct items moved.
-- Replay-safe: a second run finds the source empty and changes nothing.
-- idempotent: yes
local src = redis.call('HGETALL', KEYS[1])
if #src == 0 then
  return 0
end
local cap = tonumber(ARGV[1])
for i = 1, #src, 2 do
  local q = tonumber(redis.call('HGET', KEYS[2], src[i]) or '0') + tonumber(src[i + 1])
  if q > cap then q = cap end
  redis.call('HSET', KEYS[2], src[i], q)
end
redis.call('DEL', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return #src / 2
