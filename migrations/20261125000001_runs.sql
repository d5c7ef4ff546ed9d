-- sfsync's own bookkeeping. The synced objects live in schema "salesforce"; this schema holds
-- what sfsync needs to report progress and resume.
CREATE SCHEMA IF NOT EXISTS sfsync;

-- One row per producer run (one object, one pull). The producer writes it.
CREATE TABLE sfsync.runs (
    run_id            uuid PRIMARY KEY,
    object            text        NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    -- running: still paging; published: every page confirmed by the broker; failed: stopped early
    status            text        NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'published', 'failed')),
    pages_published   bigint      NOT NULL DEFAULT 0,
    records_published bigint      NOT NULL DEFAULT 0,
    error             text
);

-- One row per processed page, written by a worker in the same transaction as the page's upsert,
-- so the counts are exact and a redelivered page overwrites its row instead of counting twice.
CREATE TABLE sfsync.page_results (
    run_id         uuid        NOT NULL,
    page           bigint      NOT NULL,
    object         text        NOT NULL,
    records        bigint      NOT NULL,
    records_stored bigint      NOT NULL,
    records_dead   bigint      NOT NULL DEFAULT 0,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, page)
);
