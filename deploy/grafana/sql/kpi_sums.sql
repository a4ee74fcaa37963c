-- Sums per machine (and hour) of the minute rollups, whole minutes of the range only; counters
-- configured for a machine count 0 where no row counted (kpi/sums.py, kpi/counts.py).
members AS (
  SELECT m.id AS machine_id,
         coalesce(bool_or(t.signal = 'good_count'), false) AS has_good,
         coalesce(bool_or(t.signal = 'reject_count'), false) AS has_reject,
         coalesce(bool_or(t.signal = 'total_count'), false) AS has_total
  FROM machines m
  LEFT JOIN tags t ON t.machine_id = m.id AND t.active
  WHERE m.line_id = ${line:sqlstring} AND m.active {{MEMBER_FILTER}}
  GROUP BY m.id
),
sums AS (
  SELECT {{BUCKET}} k.machine_id,
         coalesce(sum(r.running_s) FILTER (WHERE p.productive), 0) AS run_p,
         coalesce(sum(r.short_stop_s) FILTER (WHERE p.productive), 0) AS short_p,
         coalesce(sum(r.running_s) FILTER (WHERE NOT p.productive), 0) AS unscheduled,
         coalesce(sum(r.down_s) FILTER (WHERE p.productive), 0) AS down_p,
         coalesce(sum(r.idle_s) FILTER (WHERE p.productive), 0) AS idle_p,
         coalesce(sum(r.setup_s) FILTER (WHERE p.productive), 0) AS setup_p,
         CASE WHEN k.has_good THEN coalesce(sum(r.good), 0)::float8 END AS g,
         CASE WHEN k.has_reject THEN coalesce(sum(r.reject), 0)::float8 END AS r,
         CASE WHEN k.has_total THEN coalesce(sum(r.total), 0)::float8 END AS t,
         CASE WHEN k.has_good THEN coalesce(sum(r.ideal_good_s), 0) END AS ig,
         CASE WHEN k.has_reject THEN coalesce(sum(r.ideal_reject_s), 0) END AS ir,
         CASE WHEN k.has_total THEN coalesce(sum(r.ideal_total_s), 0) END AS it,
         CASE WHEN k.has_good THEN coalesce(sum(r.good_units), 0)::float8 END AS ug,
         CASE WHEN k.has_reject THEN coalesce(sum(r.reject_units), 0)::float8 END AS ur,
         CASE WHEN k.has_total THEN coalesce(sum(r.total_units), 0)::float8 END AS ut
  FROM productive p
  CROSS JOIN members k
  LEFT JOIN machine_minutes r
    ON r.machine_id = k.machine_id AND r.minute = p.minute AND $__timeFilter(r.minute)
  WHERE $__timeFilter(p.minute) AND p.minute <= $__timeTo()::timestamptz - interval '1 minute'
  GROUP BY {{GROUP}} k.machine_id, k.has_good, k.has_reject, k.has_total
),
-- the third of good/reject/total from the other two, negatives floored (Counts.completed)
derived AS (
  SELECT *, run_p + short_p + unscheduled AS apt,
         coalesce(g, t - r) AS g1, coalesce(r, t - g) AS r1, coalesce(t, g + r) AS t1,
         coalesce(ig, it - ir) AS ig1, coalesce(ir, it - ig) AS ir1, coalesce(it, ig + ir) AS it1,
         coalesce(ug, ut - ur) AS ug1, coalesce(ur, ut - ug) AS ur1, coalesce(ut, ug + ur) AS ut1
  FROM sums
),
counts AS (
  SELECT *, apt + down_p + idle_p + setup_p AS pbt,
         CASE WHEN g1 < 0 THEN 0 ELSE g1 END AS good,
         CASE WHEN r1 < 0 THEN 0 ELSE r1 END AS reject,
         CASE WHEN (g1 < 0 OR r1 < 0) AND ig1 < 0 THEN 0 ELSE ig1 END AS ideal_good,
         CASE WHEN (g1 < 0 OR r1 < 0) AND ug1 < 0 THEN 0 ELSE ug1 END AS good_units,
         CASE WHEN (g1 < 0 OR r1 < 0) AND ur1 < 0 THEN 0 ELSE ur1 END AS reject_units
  FROM derived
)
