-- Per-tool latency baselines (issue 9): `exai baseline collect` appends one row per tool and transport;
-- `exai baseline compare` reads the newest row of each.
CREATE TABLE tool_baselines (
    id          BIGSERIAL PRIMARY KEY,
    at_ms       BIGINT  NOT NULL,
    tool        TEXT    NOT NULL,
    transport   TEXT    NOT NULL,
    runs        BIGINT  NOT NULL,
    errors      BIGINT  NOT NULL,
    p50_ms      DOUBLE PRECISION NOT NULL,
    p95_ms      DOUBLE PRECISION NOT NULL,
    mean_ms     DOUBLE PRECISION NOT NULL
);
CREATE INDEX tool_baselines_tool ON tool_baselines (tool, transport, id);
