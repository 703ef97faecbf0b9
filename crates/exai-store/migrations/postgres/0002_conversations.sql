-- Conversation threads (continuation_id) and their turns, oldest first by seq.
CREATE TABLE conversations (
    id             TEXT    PRIMARY KEY,
    created_at_ms  BIGINT  NOT NULL,
    updated_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL
);
CREATE INDEX conversations_expires_at ON conversations (expires_at_ms);

CREATE TABLE messages (
    conversation_id  TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              BIGINT  NOT NULL,
    role             TEXT    NOT NULL,
    content          TEXT    NOT NULL,
    files            TEXT    NOT NULL DEFAULT '[]',
    tool             TEXT    NOT NULL,
    provider         TEXT,
    model            TEXT,
    created_at_ms    BIGINT  NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
