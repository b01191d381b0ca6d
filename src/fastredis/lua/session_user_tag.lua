-- The user's session tag: one random hash tag shared by all of a user's sessions
-- (their cluster slot), kept server-side so that a session id tells nothing about
-- its user. Created on first use; its lifetime only ever grows.
-- KEYS[1]: the user's tag key (prefix:user:<escaped user id>), a string
-- ARGV[1]: a fresh random tag (hex), stored when the user has none
-- ARGV[2]: how long the tag key must live, in milliseconds (integer >= 0): the store's
--          max_age plus a margin, so it outlives every session created with the tag;
--          0 = forever (a store without max_age: its sessions may live forever)
-- Returns: the user's tag (the stored one, or ARGV[1] when it was just stored)
-- Replay-safe: a second run finds the tag the first one stored and returns it.
-- idempotent: yes
local life = tonumber(ARGV[2])
local tag = redis.call('GET', KEYS[1])
if not tag then
  if life > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', life)
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
  return ARGV[1]
end
if life == 0 then
  redis.call('PERSIST', KEYS[1])
else
  local pttl = redis.call('PTTL', KEYS[1])
  -- pttl -1: kept forever by a store without max_age, whose sessions need it
  if pttl >= 0 and pttl < life then
    redis.call('PEXPIRE', KEYS[1], life)
  end
end
return tag
