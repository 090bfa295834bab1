-- wrk script: HTTP/1.1 pipelining.
--
-- Each connection writes DEPTH requests in one write, waits for all DEPTH
-- responses, then writes the next batch. wrk counts every response, so the
-- "N requests in" line is the number of completed responses.
--
--   wrk -t1 -c64 -d5s -s bench/pipeline.lua http://127.0.0.1:8080/ -- 16
--
-- DEPTH is the first script argument (after "--"); default 16. The path of
-- every request is the path of the URL given to wrk, and wrk.format adds the
-- Host header from the URL.

init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, nil)
   end
   req = table.concat(r)
end

request = function()
   return req
end
