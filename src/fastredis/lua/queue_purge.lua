-- Empty one list of a WorkQueue/Stack (the ready list or the dead-letter list).
-- KEYS[1]: the list
-- ARGV: none
-- Returns: how many items it held.
-- idempotent: no (a replay answers 0, or empties items pushed meanwhile)
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
