-- activity_bitmap_combine: BITOP AND/OR of day bitmaps into a short-lived
-- key, count it, and delete it in the same step.
--
-- KEYS[1]: the scratch destination key (deleted before returning)
-- KEYS[2..]: the day bitmaps (KEYS[2] is the cohort for retention)
-- ARGV[1]: 'AND' or 'OR'
-- Returns: {set bits in the combination, set bits in KEYS[2]}
-- idempotent: yes
redis.call('BITOP', ARGV[1], KEYS[1], unpack(KEYS, 2))
local n = redis.call('BITCOUNT', KEYS[1])
redis.call('DEL', KEYS[1])
return {n, redis.call('BITCOUNT', KEYS[2])}
