-- Set one CompactMap item and give it its own time to live (Redis >= 7.4: HPEXPIRE).
-- KEYS[1]: the item's bucket (a hash)
-- ARGV[1]: the field of the item in the bucket
-- ARGV[2]: the value (bytes)
-- ARGV[3]: time to live in milliseconds (integer >= 1)
-- Returns: 1 if the field is new, 0 if it was updated.
-- Units: milliseconds.
-- Replay-safe: a second run writes the same value and sets the same TTL again
-- (the TTL restarts from the replay, a few milliseconds later at most).
-- idempotent: yes
local created = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HPEXPIRE', KEYS[1], ARGV[3], 'FIELDS', 1, ARGV[1])
return created
