-- `producer sync --watch` runs for months: what it knows about each object, for
-- `producer status` and for the operator. The producer writes it after each pass.
CREATE TABLE sfsync.watch_objects (
    object          text PRIMARY KEY,
    -- when the object's last sync succeeded
    last_success_at timestamptz,
    -- the last failure, and how many passes in a row have failed
    last_error      text,
    last_error_at   timestamptz,
    failures        integer     NOT NULL DEFAULT 0,
    -- a failing object is tried again no sooner than this (exponential backoff)
    retry_at        timestamptz,
    -- why the daemon is not syncing at all ("API quota"), while it is paused
    paused          text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Retention prunes finished runs by age.
CREATE INDEX runs_finished ON sfsync.runs (finished_at) WHERE finished_at IS NOT NULL;
