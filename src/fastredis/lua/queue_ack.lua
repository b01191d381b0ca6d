-- Acknowledge one delivery: remove the exact element from the consumer's
-- processing list and forget its deadline.
-- KEYS[1]: the consumer's processing list
-- KEYS[2]: deadlines: sorted set of item headers (see queue_claim.lua)
-- ARGV[1]: the element as delivered ("<id>.<failures>:<payload>")
-- ARGV[2]: its header ("<id>.<failures>")
-- Returns: 1 if this delivery was still held (now acknowledged), 0 if not: already
--          acknowledged, or returned to the queue by the reaper after its visibility
--          timeout (then the element there carries a higher failure count, so a late
--          ack never removes a later delivery of the same item).
-- idempotent: no (a replay answers 0 for an ack that succeeded; the write-retry
-- policy raises "outcome unknown" instead of re-sending)
local removed = redis.call('LREM', KEYS[1], -1, ARGV[1])
if removed > 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
