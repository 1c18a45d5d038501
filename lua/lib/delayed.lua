-- lib/delayed.lua: a delayed job's payload, as kept in the delayed payload hash: the msgpack
-- array {priority index, field, value, ...}.
-- Defines pack_delayed(prio, fields): the payload of a job of priority index `prio` with stream
--   fields `fields` (a flat {name, value, ...} list); unpack_delayed(packed): its priority index
--   (a number) and its fields.
-- Expects nothing.
local function pack_delayed(prio, fields)
  local packed = {tostring(prio)}
  for f = 1, #fields do packed[f + 1] = fields[f] end
  return cmsgpack.pack(packed)
end

local function unpack_delayed(packed)
  local job = cmsgpack.unpack(packed)
  local fields = {}
  for f = 2, #job do fields[f - 1] = job[f] end
  return tonumber(job[1]), fields
end
