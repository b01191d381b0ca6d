-- Take a lock (SET NX PX) and mint its fencing token, atomically.
-- KEYS[1]: the lock key; holds the owner token while the lock is held
-- KEYS[2]: the lock's state hash (same hash tag), never expires:
--          field n = last fencing token minted
-- ARGV[1]: the owner token (a fresh random string per acquire attempt)
-- ARGV[2]: ttl in milliseconds (integer >= 1)
-- Returns: {1, fencing token (decimal string), pttl in ms} when the lock is ours,
--          also when KEYS[1] already holds ARGV[1] (a replay under the client's retry
--          policy gets the same fencing token back);
--          {0, '0', pttl in ms of the holder} otherwise (-1: the holder's key has no expiry).
-- The fencing token is max(last + 1, server time in microseconds): strictly rising per
-- lock name, and still rising after a restart that lost the state hash.
-- idempotent: yes
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  -- n only moves on a successful acquire, which needs KEYS[1] free: so n is still ours.
  return {1, redis.call('HGET', KEYS[2], 'n') or '0', redis.call('PTTL', KEYS[1])}
end
if cur then
  return {0, '0', redis.call('PTTL', KEYS[1])}
end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('HGET', KEYS[2], 'n')) or 0
local token = string.format('%.0f', math.max(last + 1, now_us))
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'n', token)
return {1, token, tonumber(ARGV[2])}
