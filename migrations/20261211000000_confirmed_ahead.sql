-- Parallel extraction reads a run's stamp window in slices at once. The watermark only moves
-- past a slice once it is finished; what later slices stored beyond it is recorded here, as a
-- list of [from, to) instants, so that a run stopped half-way is resumed by reading only what
-- no slice confirmed. The row goes once the watermark passes every range.
CREATE TABLE sfsync.confirmed_ahead (
    object     text        PRIMARY KEY,
    ranges     jsonb       NOT NULL,
    run_id     uuid,
    updated_at timestamptz NOT NULL DEFAULT now()
);
