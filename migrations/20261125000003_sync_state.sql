-- Where each object's incremental sync resumes: the SystemModstamp of the newest record the
-- broker has confirmed. A sync reads from (watermark - overlap), so ties and late commits near
-- the watermark are read again, harmlessly, rather than skipped.
CREATE TABLE sfsync.sync_state (
    object      text        PRIMARY KEY,
    watermark   timestamptz NOT NULL,
    last_run_id uuid,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
