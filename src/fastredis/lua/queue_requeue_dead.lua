-- Move dead-lettered items back to the head of the ready list with their
-- failure count reset to 0 (oldest dead letters first).
-- KEYS[1]: dead-letter list (newest at its head)
-- KEYS[2]: ready list
-- ARGV[1]: at most this many items (integer >= 1)
-- ARGV[2]: where the head of the ready list is: "R" (queue: RPUSH) or "L" (stack: LPUSH)
-- Returns: how many items moved (elements not written by fastredis move as they are).
-- idempotent: no (a replay moves further items)
local push = ARGV[2] == 'R' and 'RPUSH' or 'LPUSH'
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  local e = redis.call('RPOP', KEYS[1])
  if not e then break end
  local header, id, n, colon = parse(e)
  if header then e = with_failures(e, id, colon, 0) end
  redis.call(push, KEYS[2], e)
  moved = moved + 1
end
return moved
