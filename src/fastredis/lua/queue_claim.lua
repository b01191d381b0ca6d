-- Start the visibility clock of the item a BLMOVE/LMOVE just moved into a
-- consumer's processing list (sent in the same pipeline, right after it), and
-- refresh the consumer's registration.
-- KEYS[1]: the consumer's processing list (the newest item is at its head, index 0)
-- KEYS[2]: deadlines: sorted set, member = item header "<id>.<failures>", score = deadline (ms)
-- KEYS[3]: consumers: sorted set, member = consumer name, score = last seen (ms, server time)
-- ARGV[1]: visibility timeout (milliseconds, integer >= 1)
-- ARGV[2]: the consumer name
-- Returns: 1 if the list has a head item, else 0 (the move found nothing).
-- Units: milliseconds of server time.
-- ZADD NX: a deadline already set (an older unacked item at the head after a
-- timed-out BLMOVE, or the reaper's first sight) is never pushed back.
-- idempotent: yes
local now = now_ms()
redis.call('ZADD', KEYS[3], now, ARGV[2])
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then return 0 end
local header = parse(head)
if header then
  redis.call('ZADD', KEYS[2], 'NX', now + tonumber(ARGV[1]), header)
end
return 1
