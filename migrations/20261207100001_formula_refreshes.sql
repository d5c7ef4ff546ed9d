-- When each object's formula fields were last read whole: by a full sync, `reconcile
-- --formulas`, or `sync --watch --formula-refresh`, which uses it to refresh no more often
-- than asked, across restarts too.
CREATE TABLE sfsync.formula_refreshes (
    object       text        PRIMARY KEY,
    -- when the read began: formula values are at least this fresh
    refreshed_at timestamptz NOT NULL,
    run_id       uuid
);
