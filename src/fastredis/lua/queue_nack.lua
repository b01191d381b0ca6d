-- Give one delivery back before its visibility timeout: to the head of the
-- queue (counted as a failure or not), or to the dead-letter list once the
-- failures reach the limit.
-- KEYS[1]: the consumer's processing list
-- KEYS[2]: ready list (the queue or stack)
-- KEYS[3]: dead-letter list
-- KEYS[4]: deadlines: sorted set of item headers (see queue_claim.lua)
-- ARGV[1]: the element as delivered ("<id>.<failures>:<payload>")
-- ARGV[2]: 1 = count this delivery as a failure, 0 = release it uncounted
-- ARGV[3]: max deliveries (integer >= 1): failures at which an item is dead-lettered
-- ARGV[4]: where the head of the ready list is: "R" (queue: RPUSH) or "L" (stack: LPUSH)
-- Returns: 1 = back in the ready list, 2 = dead-lettered, 0 = this delivery was not held
--          (acknowledged, or already returned by the reaper).
-- Malformed elements (not written by fastredis) are dead-lettered as they are.
-- idempotent: no (a replay answers 0)
local e = ARGV[1]
if redis.call('LREM', KEYS[1], -1, e) == 0 then return 0 end
local header, id, n, colon = parse(e)
if not header then
  redis.call('LPUSH', KEYS[3], e)
  return 2
end
redis.call('ZREM', KEYS[4], header)
if ARGV[2] == '1' then n = n + 1 end
local moved = with_failures(e, id, colon, n)
if n >= tonumber(ARGV[3]) then
  redis.call('LPUSH', KEYS[3], moved)
  return 2
end
if ARGV[4] == 'R' then redis.call('RPUSH', KEYS[2], moved) else redis.call('LPUSH', KEYS[2], moved) end
return 1
