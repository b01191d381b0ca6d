-- Release a lock only if it is still ours, and wake the waiters.
-- KEYS[1]: the lock key
-- KEYS[2]: the lock's state hash (same hash tag); field released = last released owner token
-- ARGV[1]: the owner token
-- ARGV[2]: the release channel to PUBLISH on ('' = publish nothing); a channel, not a key
-- Returns: 1 released now; 2 already released by this owner token (a replay under the
--          client's retry policy); 0 not ours (expired, or another owner holds it: untouched).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'released', ARGV[1])
  if ARGV[2] ~= '' then
    redis.call('PUBLISH', ARGV[2], 'released')
  end
  return 1
end
if redis.call('HGET', KEYS[2], 'released') == ARGV[1] then
  return 2
end
return 0
