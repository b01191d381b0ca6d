-- Return the items whose visibility timeout passed from the processing lists
-- to the head of the ready list (or to the dead-letter list once their
-- failures reach the limit); start the clock of items seen without a deadline;
-- forget consumers with an empty list not seen for the retention time.
-- KEYS[1]: ready list
-- KEYS[2]: dead-letter list
-- KEYS[3]: deadlines: sorted set, member = item header "<id>.<failures>", score = deadline (ms)
-- KEYS[4]: consumers: sorted set, member = consumer name, score = last seen (ms)
-- KEYS[5..]: processing lists, one per consumer named in ARGV[7..] (same order)
-- ARGV[1]: visibility timeout (milliseconds, integer >= 1)
-- ARGV[2]: max deliveries (integer >= 1): failures at which an item is dead-lettered
-- ARGV[3]: retention (milliseconds): idle time after which an empty consumer is forgotten,
--          and age past its deadline after which a deadline entry with no item is dropped
-- ARGV[4]: where the head of the ready list is: "R" (queue: RPUSH) or "L" (stack: LPUSH)
-- ARGV[5]: at most this many items examined per processing list (oldest first)
-- ARGV[6]: "1" on the last batch of consumers of this run (then stale deadlines are dropped)
-- ARGV[7..]: consumer names
-- Returns: {returned to the queue, dead-lettered, clocks started, consumers forgotten}
-- Units: milliseconds of server time.
-- Replay-safe: items already returned are no longer in the processing lists, so a
-- second run only reaps what is due by then.
-- idempotent: yes
local ready, dead, deadlines, consumers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local vt, max_deliveries, retention = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local push = ARGV[4] == 'R' and 'RPUSH' or 'LPUSH'
local limit = tonumber(ARGV[5])
local now = now_ms()
local returned, buried, started, forgotten = 0, 0, 0, 0
for i = 5, #KEYS do
  local proc, name = KEYS[i], ARGV[i + 2]
  local items = redis.call('LRANGE', proc, -limit, -1)
  for j = #items, 1, -1 do  -- oldest (tail) first
    local e = items[j]
    local header, id, n, colon = parse(e)
    if not header then
      redis.call('LREM', proc, -1, e)
      redis.call('LPUSH', dead, e)
      buried = buried + 1
    else
      local deadline = redis.call('ZSCORE', deadlines, header)
      if not deadline then
        redis.call('ZADD', deadlines, now + vt, header)
        started = started + 1
      elseif tonumber(deadline) <= now then
        redis.call('LREM', proc, -1, e)
        redis.call('ZREM', deadlines, header)
        local moved = with_failures(e, id, colon, n + 1)
        if n + 1 >= max_deliveries then
          redis.call('LPUSH', dead, moved)
          buried = buried + 1
        else
          redis.call(push, ready, moved)
          returned = returned + 1
        end
      end
    end
  end
  if redis.call('LLEN', proc) == 0 then
    local seen = tonumber(redis.call('ZSCORE', consumers, name) or '0')
    if seen < now - retention then
      redis.call('ZREM', consumers, name)
      forgotten = forgotten + 1
    end
  end
end
if ARGV[6] == '1' then
  redis.call('ZREMRANGEBYSCORE', deadlines, '-inf', '(' .. (now - retention))
end
return {returned, buried, started, forgotten}
