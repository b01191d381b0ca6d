-- Delete sessions and drop them from their per-user index.
-- KEYS[1]: per-user index ZSET of the tag (member = secret)
-- KEYS[2..]: session hashes to delete
-- ARGV[1]: user id that must own each session ("" = delete whatever the owner)
-- ARGV[2..]: index member (secret) of each session in KEYS[2..], same order
-- Returns: number of sessions deleted.
-- Replay-safe: deleting twice deletes nothing more.
-- idempotent: yes
local n = 0
for i = 2, #KEYS do
  local owner = redis.call('HGET', KEYS[i], 'm:uid')
  -- owner == false: already expired, only the stale index entry is left
  if ARGV[1] == '' or owner == ARGV[1] or owner == false then
    n = n + redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
