-- Release a TieredCache load lease if this caller still holds it (the loader failed).
-- KEYS[1]: lease key
-- ARGV[1]: lease token
-- Returns: 1 if released, 0 if the lease was not ours (expired or taken over)
-- Replay-safe: a second run finds the lease gone and returns 0.
-- idempotent: yes
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
