-- Write a value only if no newer fencing token has written it (the storage-side check
-- that makes a lock safe against a paused or partitioned holder).
-- KEYS[1]: the protected key (a string value)
-- KEYS[2]: the highest fencing token that has written KEYS[1] (same hash slot)
-- ARGV[1]: the writer's fencing token (decimal integer, 1 .. 2^53)
-- ARGV[2]: the value to store in KEYS[1]
-- Returns: 1 written (ARGV[1] >= the highest token seen); 0 rejected, nothing changed.
-- idempotent: yes
local seen = tonumber(redis.call('GET', KEYS[2])) or 0
if tonumber(ARGV[1]) < seen then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return 1
