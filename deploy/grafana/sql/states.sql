-- Each state sample holds until the next, for at most max_gap_s (KPI.md section 1)
WITH state_tag AS (
  SELECT t.id, m.state_map,
         make_interval(secs => coalesce(
           (SELECT (basis->>'kpi.max_gap_s')::float8 FROM rollup_state WHERE machine_id = m.id),
           60)) AS max_gap
  FROM tags t JOIN machines m ON m.id = t.machine_id
  WHERE t.machine_id = ${machine:sqlstring} AND t.signal = 'state' AND t.active
),
samples AS (
  SELECT r.time, r.value, r.quality FROM readings r JOIN state_tag s ON r.tag_id = s.id
  WHERE $__timeFilter(r.time)
  UNION ALL
  (SELECT r.time, r.value, r.quality FROM readings r JOIN state_tag s ON r.tag_id = s.id
   WHERE r.time < $__timeFrom() ORDER BY r.time DESC LIMIT 1)
  UNION ALL
  (SELECT r.time, r.value, r.quality FROM readings r JOIN state_tag s ON r.tag_id = s.id
   WHERE r.time > $__timeTo() ORDER BY r.time LIMIT 1)
),
classed AS (
  SELECT x.time, lead(x.time) OVER (ORDER BY x.time) AS next,
         CASE WHEN x.quality = 2 OR x.quality < 0 OR x.value IS NULL
                   OR NOT x.value BETWEEN -1e15 AND 1e15 OR x.value <> trunc(x.value)
              THEN 'unknown'
              ELSE coalesce(s.state_map->>(x.value::bigint::text), 'unknown') END AS state
  FROM samples x CROSS JOIN state_tag s
),
changes AS (
  SELECT time, state FROM classed
  UNION ALL
  SELECT c.time + s.max_gap, 'unknown' FROM classed c CROSS JOIN state_tag s
  WHERE coalesce(c.next, least(now(), $__timeTo()::timestamptz)) > c.time + s.max_gap
  UNION ALL
  SELECT '-infinity', 'unknown'
)
SELECT greatest(time, $__timeFrom()::timestamptz) AS "time", state
FROM changes
WHERE time < $__timeTo()
  AND time >= (SELECT max(time) FROM changes WHERE time <= $__timeFrom())
ORDER BY time
