-- Take over pending stream entries for one consumer, dead-lettering the ones
-- already delivered max_deliveries times and dropping the ones trimmed away.
-- KEYS[1]: stream
-- KEYS[2]: dead-letter stream (same hash tag as KEYS[1])
-- ARGV[1]: consumer group
-- ARGV[2]: consumer name (the new owner)
-- ARGV[3]: mode: "own"  = this consumer's own pending entries (restart recovery), any idle time;
--                "auto" = any consumer's entries idle for at least ARGV[4] (XAUTOCLAIM)
-- ARGV[4]: min idle (milliseconds, integer >= 0; "auto" only)
-- ARGV[5]: count (max entries examined, integer > 0)
-- ARGV[6]: max deliveries (integer > 0): an entry delivered this many times is dead-lettered
-- ARGV[7]: start id (inclusive scan start, e.g. "0-0")
-- ARGV[8]: dead-letter stream bound (integer > 0): KEYS[2] keeps at most this many
--          entries (exact MAXLEN), the oldest dropped first
-- Returns: {next_start, {{id, {field, value, ...}}, ...}, {delivery count per entry}, {dead-lettered ids}, {trimmed ids}}
--          next_start is "" when the scan reached the end.
-- Delivery counts come from XPENDING (with IDLE in "auto" mode; Redis >= 6.2).
-- XAUTOCLAIM replies {next, entries} on 6.2 and {next, entries, deleted} on 7.x: both handled.
-- Replay-safe: dead-lettered entries are acked in the same script, so a replay
-- cannot bury them twice; a replayed claim re-claims for the same consumer.
-- idempotent: no (a second run claims again and bumps delivery counts; dead-letters twice)
local stream, dead, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local mode, min_idle, count = ARGV[3], ARGV[4], tonumber(ARGV[5])
local max_deliveries, start = tonumber(ARGV[6]), ARGV[7]

local rows
if mode == 'own' then
  rows = redis.call('XPENDING', stream, group, start, '+', count, consumer)
else
  rows = redis.call('XPENDING', stream, group, 'IDLE', min_idle, start, '+', count)
end

local dead_ids, gone_ids, keep, keep_counts = {}, {}, {}, {}
for _, row in ipairs(rows) do
  local id, deliveries = row[1], tonumber(row[4])
  local found = redis.call('XRANGE', stream, id, id)
  if #found == 0 then
    -- trimmed (MAXLEN) or XDEL'd before anyone acked it: nothing left to deliver
    redis.call('XACK', stream, group, id)
    table.insert(gone_ids, id)
  elseif deliveries >= max_deliveries then
    local fields = found[1][2]
    table.insert(fields, '_dead_id'); table.insert(fields, cjson.encode(id))
    table.insert(fields, '_dead_group'); table.insert(fields, cjson.encode(group))
    table.insert(fields, '_dead_owner'); table.insert(fields, cjson.encode(row[2]))
    table.insert(fields, '_dead_deliveries'); table.insert(fields, tostring(deliveries))
    table.insert(fields, '_dead_reason')
    table.insert(fields, cjson.encode('delivered ' .. deliveries .. ' times (max_deliveries=' .. max_deliveries .. ')'))
    redis.call('XADD', dead, 'MAXLEN', ARGV[8], '*', unpack(fields))
    redis.call('XACK', stream, group, id)
    table.insert(dead_ids, id)
  else
    table.insert(keep, id)
    table.insert(keep_counts, deliveries + 1)
  end
end

local next_start = ''
if #rows == count then
  local ms, seq = string.match(rows[#rows][1], '^(%d+)-(%d+)$')
  next_start = ms .. '-' .. (tonumber(seq) + 1)
end

local entries = {}
if #keep > 0 then
  if mode == 'own' then
    entries = redis.call('XCLAIM', stream, group, consumer, 0, unpack(keep))
  else
    -- the survivors are exactly the first #keep idle entries from start, in id order
    local reply = redis.call('XAUTOCLAIM', stream, group, consumer, min_idle, start, 'COUNT', #keep)
    entries = reply[2]
  end
end
-- map the counts onto what was really claimed (an entry acked meanwhile is absent)
local by_id = {}
for i, id in ipairs(keep) do by_id[id] = keep_counts[i] end
local counts = {}
for i, e in ipairs(entries) do counts[i] = by_id[e[1]] or 1 end
return {next_start, entries, counts, dead_ids, gone_ids}
