SELECT {{SELECT_TIME}}
       CASE WHEN pbt > 0 THEN apt / pbt END AS availability,
       CASE WHEN apt > 0 THEN it1 / apt END AS performance,
       CASE WHEN t1 > 0 THEN good / t1 END AS quality,
       CASE WHEN pbt > 0 THEN ideal_good / pbt END AS oee
FROM counts
{{ORDER}}
