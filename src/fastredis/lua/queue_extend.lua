-- Push back the visibility deadline of a delivery that is still held.
-- KEYS[1]: the consumer's processing list
-- KEYS[2]: deadlines: sorted set of item headers (see queue_claim.lua)
-- ARGV[1]: the element as delivered
-- ARGV[2]: its header ("<id>.<failures>")
-- ARGV[3]: new visibility timeout from now (milliseconds, integer >= 1)
-- Returns: the new deadline (ms, server time) as an integer, or 0 if the delivery is not held.
-- idempotent: yes (a replay sets the deadline again, from a few ms later)
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
local deadline = now_ms() + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], deadline, ARGV[2])
return deadline
