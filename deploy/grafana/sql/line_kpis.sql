-- KPI.md section 4: the constraint's times, good units at the outputs, rejects of all machines
line AS (
  SELECT constraint_machine, output_machines,
         (SELECT ideal_cycle_s FROM machine_ideal_cycles
          WHERE machine_id = constraint_machine ORDER BY valid_from DESC LIMIT 1)
         / coalesce((SELECT units_per_count FROM machine_units
                     WHERE machine_id = constraint_machine ORDER BY valid_from DESC LIMIT 1), 1)
           AS configured_cycle
  FROM lines WHERE id = ${line:sqlstring}
),
per_line AS (
  SELECT {{SELECT_TIME}}
         max(c.apt) FILTER (WHERE c.machine_id = l.constraint_machine) AS apt,
         max(c.pbt) FILTER (WHERE c.machine_id = l.constraint_machine) AS pbt,
         max(c.ut1) FILTER (WHERE c.machine_id = l.constraint_machine) AS c_units,
         max(c.it1) FILTER (WHERE c.machine_id = l.constraint_machine) AS c_ideal,
         max(l.configured_cycle) AS configured_cycle,
         CASE WHEN bool_and(c.good_units IS NOT NULL)
                   FILTER (WHERE c.machine_id = ANY (l.output_machines))
              THEN sum(c.good_units) FILTER (WHERE c.machine_id = ANY (l.output_machines)) END
           AS good,
         CASE WHEN bool_and(c.reject_units IS NOT NULL) THEN sum(c.reject_units) END AS reject
  FROM counts c CROSS JOIN line l
  {{GROUP_LINE}}
),
kpis AS (
  SELECT *, good + reject AS total,
         CASE WHEN c_units <> 0 AND c_ideal IS NOT NULL THEN c_ideal / c_units
              ELSE configured_cycle END AS cycle
  FROM per_line
)
SELECT {{OUT_TIME}}
       CASE WHEN pbt > 0 THEN apt / pbt END AS availability,
       CASE WHEN apt > 0 THEN total * cycle / apt END AS performance,
       CASE WHEN total > 0 THEN good / total END AS quality,
       CASE WHEN pbt > 0 THEN good * cycle / pbt END AS oee{{EXTRA}}
FROM kpis
{{ORDER}}
