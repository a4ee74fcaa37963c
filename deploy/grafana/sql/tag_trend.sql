SELECT time_bucket(($__interval_ms || ' milliseconds')::interval, r.time, {{ZONE}}) AS "time",
       t.machine_id || ' ' || t.name || coalesce(' [' || t.unit || ']', '') AS metric,
       avg(r.value) AS value
FROM readings r JOIN tags t ON t.id = r.tag_id
WHERE r.tag_id = ${tag:sqlstring}::int AND $__timeFilter(r.time) AND r.time < $__timeTo()
  AND r.value IS NOT NULL
GROUP BY 1, 2
ORDER BY 1
