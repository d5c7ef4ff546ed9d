-- One row per record (or whole message) a worker set aside on the dead-letter queue, written in
-- the same transaction as the rest of its page. The queue holds the records for replay; this
-- table lets `producer status` count them and lets an operator query failures with SQL.
-- A replayed record that is then stored gets resolved_at; if it fails again, its row is updated.
CREATE TABLE sfsync.dead_letters (
    run_id       uuid        NOT NULL,
    page         bigint      NOT NULL,
    -- index of the record in its page
    record_index integer     NOT NULL,
    object       text        NOT NULL,
    sfid         varchar(18),
    error_class  text        NOT NULL,
    error        text        NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 1,
    resolved_at  timestamptz,
    PRIMARY KEY (run_id, page, record_index)
);
