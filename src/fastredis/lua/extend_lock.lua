-- Extend a lock only if it is still ours.
-- KEYS[1]: the lock key
-- KEYS[2]: the lock's state hash (same hash tag); field ext = id of the last 'add' request
-- ARGV[1]: the owner token
-- ARGV[2]: milliseconds (integer >= 1)
-- ARGV[3]: 'set': the remaining ttl becomes ARGV[2] ms (idempotent);
--          'add': the remaining ttl grows by ARGV[2] ms
-- ARGV[4]: request id of an 'add' (a replay of the same request does not add twice)
-- Returns: the new remaining ttl in ms (>= 1), or 0 when the lock is not ours (untouched).
-- idempotent: yes
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ms = tonumber(ARGV[2])
if ARGV[3] == 'add' then
  if redis.call('HGET', KEYS[2], 'ext') == ARGV[4] then
    return redis.call('PTTL', KEYS[1])
  end
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < 0 then
    pttl = 0
  end
  ms = pttl + ms
  redis.call('HSET', KEYS[2], 'ext', ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ms)
return ms
