-- shopfloor schema 6: what each machine's rollups were computed with.
--
-- rollup_state.basis: the machine's KPI-relevant configuration as the refresh that wrote its
-- minutes saw it (state map, stop reasons' categories, kpi.short_stop_s and kpi.max_gap_s,
-- counter modes and wraps; storage.rollup_basis.basis_of). A refresh that finds another one
-- recomputes the machine's minutes from its first reading kept, with a WARNING naming what
-- changed (docs/rollups.md, "Config changes"). NULL: not recorded yet (rollups written before
-- this migration): the next refresh records its own without recomputing.
ALTER TABLE rollup_state ADD COLUMN basis jsonb;
