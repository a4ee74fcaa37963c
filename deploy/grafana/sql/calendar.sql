-- The line's shift calendar as the engine reads it (kpi/calendar.py): each shift placed on
-- the local date it starts on, local clocks to UTC with the first of two equal clocks and the
-- offset before a change for a clock that does not exist; every minute productive or not.
cal AS (
  SELECT c.timezone AS tz, s.shift
  FROM lines l
  JOIN calendars c ON c.name = l.calendar
  CROSS JOIN LATERAL jsonb_array_elements(c.shifts) AS s (shift)
  WHERE l.id = ${line:sqlstring}
),
occ AS (
  SELECT row_number() OVER () AS occ, tz, shift, d::date AS day
  FROM cal
  CROSS JOIN generate_series(
    ($__timeFrom()::timestamptz AT TIME ZONE tz)::date - 1,
    ($__timeTo()::timestamptz AT TIME ZONE tz)::date,
    interval '1 day') AS d
  WHERE shift->'days' ? to_char(d, 'dy')
),
local_spans AS (
  SELECT occ, tz, 'shift' AS kind,
         day + (shift->>'start')::time AS ls,
         day + ((shift->>'end')::time <= (shift->>'start')::time)::int + (shift->>'end')::time AS le
  FROM occ
  UNION ALL
  SELECT occ, tz, 'break', b.day + (brk->>'start')::time,
         b.day + ((brk->>'end')::time <= (brk->>'start')::time)::int + (brk->>'end')::time
  FROM occ
  CROSS JOIN LATERAL jsonb_array_elements(shift->'breaks') AS x (brk)
  CROSS JOIN LATERAL (
    SELECT day + ((brk->>'start')::time < (shift->>'start')::time)::int AS day) AS b
),
spans AS (
  SELECT occ, kind,
         CASE WHEN s0 < s1 AND s0 AT TIME ZONE tz = ls THEN s0 ELSE s1 END AS s,
         CASE WHEN e0 < e1 AND e0 AT TIME ZONE tz = le THEN e0 ELSE e1 END AS e
  FROM local_spans
  CROSS JOIN LATERAL (SELECT ls AT TIME ZONE tz AS s1, le AT TIME ZONE tz AS e1) AS later
  CROSS JOIN LATERAL (
    SELECT (ls - ((s1 - interval '1 day') AT TIME ZONE tz
                  - (s1 - interval '1 day') AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC' AS s0,
           (le - ((e1 - interval '1 day') AT TIME ZONE tz
                  - (e1 - interval '1 day') AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC' AS e0
  ) AS earlier
),
shifts AS (SELECT occ, s, e FROM spans WHERE kind = 'shift' AND s < e),
breaks AS (
  SELECT b.occ, greatest(b.s, i.s) AS s, least(b.e, i.e) AS e
  FROM spans b JOIN shifts i USING (occ)
  WHERE b.kind = 'break' AND greatest(b.s, i.s) < least(b.e, i.e)
),
productive AS MATERIALIZED (
  SELECT m AS minute,
         NOT EXISTS (SELECT FROM cal)
         OR EXISTS (
           SELECT FROM shifts i
           WHERE m >= i.s AND m < i.e
             AND NOT EXISTS (SELECT FROM breaks b WHERE b.occ = i.occ AND m >= b.s AND m < b.e)
         ) AS productive
  FROM generate_series(date_trunc('minute', $__timeFrom()::timestamptz),
                       $__timeTo()::timestamptz, interval '1 minute') AS m
),
