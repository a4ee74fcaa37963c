members AS (
  SELECT id AS machine_id FROM machines WHERE line_id = ${line:sqlstring} AND active
),
-- productive runs of the range; events per docs/engine.md, Downtime from rollups
marks AS (
  SELECT minute, productive,
         productive AND before IS DISTINCT FROM true AS run_start,
         sum((productive AND before IS DISTINCT FROM true)::int) OVER (ORDER BY minute) AS run_no
  FROM (
    SELECT minute, productive, lag(productive) OVER (ORDER BY minute) AS before
    FROM productive
    WHERE $__timeFilter(minute) AND minute <= $__timeTo()::timestamptz - interval '1 minute'
  ) AS m
),
stops AS (
  SELECT d.machine_id, d.minute, d.reason, d.time_class, d.duration_us, d.starts, d.carried,
         k.productive, k.run_start, k.run_no
  FROM downtime_minutes d
  JOIN members USING (machine_id)
  JOIN marks k USING (minute)
  WHERE $__timeFilter(d.minute)
),
gap_first AS (
  SELECT run_no AS gap, min(minute) AS minute
  FROM marks WHERE NOT productive AND run_no > 0
  GROUP BY run_no
),
-- gaps between runs that one stop spans: carried at the gap's start, nothing starting inside
spanned AS (
  SELECT s.machine_id, s.run_no AS gap
  FROM stops s JOIN gap_first g ON g.gap = s.run_no
  WHERE NOT s.productive
  GROUP BY s.machine_id, s.run_no
  HAVING bool_or(s.carried AND s.minute = g.minute) AND sum(s.starts) = 0
),
per_key AS (
  SELECT reason, time_class, sum(duration_us) FILTER (WHERE productive) AS us,
         coalesce(sum(starts) FILTER (WHERE productive), 0)
         + count(*) FILTER (
             WHERE run_start AND carried
               AND NOT EXISTS (SELECT FROM spanned p
                               WHERE p.machine_id = s.machine_id AND p.gap = s.run_no - 1)
           ) AS events
  FROM stops s
  GROUP BY reason, time_class
  HAVING sum(duration_us) FILTER (WHERE productive) > 0
)
SELECT k.reason AS reason_code, coalesce(r.text, 'no reason') AS reason, r.category,
       k.time_class, k.us::float8 / 1e6 AS duration_s, k.events,
       k.us::float8 / sum(k.us::float8) OVER () AS share
FROM per_key k LEFT JOIN stop_reasons r ON r.code = k.reason
ORDER BY k.us DESC, k.events DESC, k.reason IS NULL, k.reason, k.time_class
