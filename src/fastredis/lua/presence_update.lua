-- Presence of one room: prune stale members, then heartbeat / leave / read.
-- KEYS[1]: heartbeat ZSET (member = user, score = last heartbeat, seconds since epoch)
-- ARGV[1]: now (seconds since epoch, float) or "" for the server's TIME
-- ARGV[2]: timeout (seconds, float > 0): a member whose last heartbeat is older is gone
-- ARGV[3]: event channel ("" = publish no join/leave events)
-- ARGV[4]: "heartbeat" | "leave" | "list" | "count" | "member"
-- ARGV[5]: user (for heartbeat, leave, member)
-- ARGV[6]: room name, copied into the events
-- Returns: heartbeat -> 1 if the user joined (was not online), else 0;
--          leave -> 1 if the user was online, else 0;
--          list -> the online users; count -> their number; member -> 1 / 0.
-- Events are JSON objects {"event": "join"|"leave", "user": ..., "room": ...}.
-- ZADD GT: a late, out-of-order heartbeat never moves a user back in time.
-- Replay-safe: a replayed heartbeat finds the user present and publishes nothing.
-- idempotent: yes
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local cutoff = now - tonumber(ARGV[2])
local chan = ARGV[3]
local room = ARGV[6]
local function event(kind, user)
  if chan ~= '' then
    redis.call('PUBLISH', chan, cjson.encode({event = kind, user = user, room = room}))
  end
end
-- strictly older than the cutoff is stale; '(' keeps a member heartbeating exactly at it
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.17g', cutoff))
if #stale > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.17g', cutoff))
  for _, u in ipairs(stale) do event('leave', u) end
end
local mode = ARGV[4]
if mode == 'heartbeat' then
  local added = redis.call('ZADD', KEYS[1], 'GT', string.format('%.17g', now), ARGV[5])
  -- the set lives while anyone may still be online
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
  if added == 1 then event('join', ARGV[5]) end
  return added
elseif mode == 'leave' then
  local removed = redis.call('ZREM', KEYS[1], ARGV[5])
  if removed == 1 then event('leave', ARGV[5]) end
  return removed
elseif mode == 'list' then
  return redis.call('ZRANGE', KEYS[1], 0, -1)
elseif mode == 'count' then
  return redis.call('ZCARD', KEYS[1])
elseif mode == 'member' then
  if redis.call('ZSCORE', KEYS[1], ARGV[5]) then return 1 end
  return 0
end
return redis.error_reply('unknown presence mode ' .. mode)
