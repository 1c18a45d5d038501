-- lib/fields.lua: a stream entry's fields, as the flat list {name, value, ...} XRANGE returns.
-- Defines field(fields, name): the value of the first field `name`, or nil; and
--   set_field(fields, name, value): sets the first field `name` in place, or appends it.
-- Expects nothing.
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

local function set_field(fields, name, value)
  for i = 1, #fields, 2 do
    if fields[i] == name then fields[i + 1] = value; return end
  end
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
