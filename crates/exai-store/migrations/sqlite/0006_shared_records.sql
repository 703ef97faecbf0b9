-- State that replicas share (issue 10): legacy MCP HTTP sessions, WebSocket sessions and the results kept for
-- them while a client reconnects, and task records. A row lapses at expires_at_ms and is purged later.
CREATE TABLE shared_records (
    scope         TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    body          TEXT   NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, name)
);
CREATE INDEX shared_records_expiry ON shared_records (expires_at_ms);
