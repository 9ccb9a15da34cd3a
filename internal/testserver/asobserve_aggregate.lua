-- Stream aggregations the test server implements in Go (internal/testserver/aggregate.go):
-- the server runs the filter and map stages and a first reduce over its share of the
-- records; the client runs this file's reduce over the nodes' partial results.

local function add(a, b)
  return a + b
end

-- count(): the number of matching records.
function count(stream)
  local function one(rec)
    return 1
  end
  return stream : map(one) : reduce(add)
end

-- sum(bin): the sum of bin over the matching records whose bin is a number (the
-- server's Go version counts only integers).
function sum(stream, bin)
  local function has_integer(rec)
    return type(rec[bin]) == "number"
  end
  local function value(rec)
    return rec[bin]
  end
  return stream : filter(has_integer) : map(value) : reduce(add)
end
