-- Every finished tool call (issue 8), kept for `observability.executions_retention_days`.
CREATE TABLE tool_executions (
    id          BIGSERIAL PRIMARY KEY,
    at_ms       BIGINT  NOT NULL,
    tool        TEXT    NOT NULL,
    provider    TEXT,
    model       TEXT,
    latency_ms  BIGINT  NOT NULL,
    status      TEXT    NOT NULL,
    error_kind  TEXT,
    tokens_in   BIGINT,
    tokens_out  BIGINT,
    session     TEXT
);
CREATE INDEX tool_executions_at ON tool_executions (at_ms);
