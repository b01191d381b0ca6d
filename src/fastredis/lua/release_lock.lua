-- Release a lock only if it is still ours, and wake the waiters.
-- KEYS[1]: the lock key
-- KEYS[2]: this owner token's release tombstone (same hash tag), so that a replay
--          under the client's retry policy is recognised even if others took and
--          released the lock in between
-- ARGV[1]: the owner token
-- ARGV[2]: the release channel to PUBLISH on ('' = publish nothing); a channel, not a key
-- ARGV[3]: how long the tombstone lives, in milliseconds (integer >= 1)
-- Returns: 1 released now; 2 already released by this owner token (a replay);
--          0 not ours (expired, or another owner holds it: left untouched).
-- idempotent: yes
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  if ARGV[2] ~= '' then
    redis.call('PUBLISH', ARGV[2], 'released')
  end
  return 1
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 2
end
return 0
