/**
 * Versioned schema migrations of the SQLite lease store. Migration N brings the schema from
 * version N-1 to N; the applied version is kept in `PRAGMA user_version`. Migrations are only
 * ever appended, never edited, so every existing store file can be brought forward.
 *
 * @example
 * SQLITE_MIGRATIONS.length; // the schema version a fresh store ends at
 */

/** The ordered migrations; index i holds the SQL that produces schema version i + 1. */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  -- One row per address that ever had an owner. state 'active' = leased; 'released' = cooling
  -- (the row keeps the last owner and generation, so a new owner gets generation + 1).
  CREATE TABLE leases (
    ip           TEXT PRIMARY KEY,
    sandbox      TEXT NOT NULL,
    mac          TEXT,
    ifindex      INTEGER,
    ifname       TEXT,
    state        TEXT NOT NULL CHECK (state IN ('active', 'released')),
    generation   INTEGER NOT NULL CHECK (generation >= 1),
    allocated_at TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    released_at  TEXT
  ) STRICT;
  CREATE UNIQUE INDEX leases_active_sandbox ON leases (sandbox) WHERE state = 'active';

  CREATE TABLE quarantine (
    ip       TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    evidence TEXT NOT NULL,
    since    TEXT NOT NULL,
    until    TEXT
  ) STRICT;

  CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    ip      TEXT,
    sandbox TEXT,
    detail  TEXT NOT NULL
  ) STRICT;
  CREATE INDEX events_ip ON events (ip, id);
  CREATE INDEX events_sandbox ON events (sandbox, id);
  CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
  CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  CREATE TABLE ports (
    proto     TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    host_port INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    sandbox   TEXT NOT NULL,
    port      INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    PRIMARY KEY (proto, host_port)
  ) STRICT;

  CREATE TABLE identities (
    sandbox     TEXT PRIMARY KEY,
    ip          TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    secret_hash TEXT NOT NULL,
    app         TEXT,
    audiences   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    rotated_at  TEXT NOT NULL
  ) STRICT;
  `,
  `
  -- The agent (node) that allocated a lease, for stores shared by several agents.
  ALTER TABLE leases ADD COLUMN node TEXT;
  `,
  `
  -- Two fewer pages written per commit. Event ids without AUTOINCREMENT (no sqlite_sequence
  -- update per event): ids stay increasing because events are never deleted, so a new id is always
  -- the largest plus one. And the round-robin cursor is no longer kept in meta: the address of the
  -- newest 'allocated' event is the last one handed out.
  CREATE TABLE events_v3 (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    ip      TEXT,
    sandbox TEXT,
    detail  TEXT NOT NULL
  ) STRICT;
  INSERT INTO events_v3 (id, at, kind, ip, sandbox, detail)
    SELECT id, at, kind, ip, sandbox, detail FROM events ORDER BY id;
  DROP TABLE events;
  ALTER TABLE events_v3 RENAME TO events;
  CREATE INDEX events_ip ON events (ip, id);
  CREATE INDEX events_sandbox ON events (sandbox, id);
  CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
  CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
  DELETE FROM sqlite_sequence WHERE name = 'events';
  DELETE FROM meta WHERE key = 'cursor';
  `,
];
