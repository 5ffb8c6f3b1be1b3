-- preflight migration 008: per-run budgets shared by every process serving a run (clients::pg_run_budget_store, the
-- default pipeline's run_budget gate; docs/limits.md "Run budgets").
--
-- One row per flow run: the mutating calls counted for it and when it is forgotten (ttl after its last charge; a row
-- past expires_at counts as absent). A charge is one upsert that locks the run's row and re-checks its WHERE on the
-- newest version, so concurrent charges from any process never grant more than the budget; a denied charge writes
-- nothing. pg_run_budget_store::purge_expired deletes forgotten runs.
CREATE TABLE IF NOT EXISTS preflight_run_budgets (
    run_id text PRIMARY KEY,
    used bigint NOT NULL CHECK (used >= 0),
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS preflight_run_budgets_expires ON preflight_run_budgets (expires_at);
