import GRDB

/// The coordinator's tables. Migrations only ever append, so an older database upgrades in place.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    spec_json TEXT NOT NULL,
                    spec_toml TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('pending','running','completed','failed','cancelled')),
                    rounds_planned INTEGER NOT NULL,
                    completed_rounds INTEGER NOT NULL DEFAULT 0,
                    created_at REAL NOT NULL,
                    message TEXT NOT NULL DEFAULT ''
                );
                CREATE TABLE rounds (
                    run_id TEXT NOT NULL REFERENCES runs(id),
                    round INTEGER NOT NULL,
                    started_at REAL NOT NULL,
                    finished_at REAL NOT NULL,
                    num_silos INTEGER NOT NULL,
                    num_examples INTEGER NOT NULL,
                    train_loss REAL,
                    test_accuracy REAL,
                    test_loss REAL,
                    checkpoint_sha256 TEXT NOT NULL REFERENCES checkpoints(sha256),
                    PRIMARY KEY (run_id, round)
                );
                CREATE TABLE round_silos (
                    run_id TEXT NOT NULL,
                    round INTEGER NOT NULL,
                    silo_id TEXT NOT NULL,
                    num_examples INTEGER NOT NULL,
                    train_loss REAL,
                    train_seconds REAL,
                    PRIMARY KEY (run_id, round, silo_id),
                    FOREIGN KEY (run_id, round) REFERENCES rounds(run_id, round)
                );
                CREATE TABLE round_attempts (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    run_id TEXT NOT NULL REFERENCES runs(id),
                    round INTEGER NOT NULL,
                    outcome TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    at REAL NOT NULL
                );
                CREATE TABLE metrics (
                    run_id TEXT NOT NULL,
                    round INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    value REAL NOT NULL,
                    PRIMARY KEY (run_id, round, name)
                );
                CREATE TABLE checkpoints (
                    sha256 TEXT PRIMARY KEY,
                    path TEXT NOT NULL,
                    run_id TEXT NOT NULL,
                    round INTEGER NOT NULL,
                    created_at REAL NOT NULL
                );
                CREATE TABLE silos (
                    id TEXT PRIMARY KEY,
                    dataset TEXT NOT NULL,
                    num_examples INTEGER NOT NULL,
                    first_seen REAL NOT NULL,
                    last_seen REAL NOT NULL
                );
                """)
        }
        m.registerMigration("v2-secure-aggregation") { db in
            try db.execute(sql: """
                ALTER TABLE silos ADD COLUMN identity_key BLOB;
                ALTER TABLE rounds ADD COLUMN unmasked INTEGER;
                ALTER TABLE rounds ADD COLUMN dropped INTEGER;
                """)
        }
        m.registerMigration("v3-privacy") { db in
            try db.execute(sql: """
                ALTER TABLE rounds ADD COLUMN epsilon REAL;
                ALTER TABLE rounds ADD COLUMN delta REAL;
                """)
        }
        m.registerMigration("v4-record-privacy") { db in
            // What each silo reported it had spent on its own records (record mode), cumulative over the run.
            try db.execute(sql: """
                ALTER TABLE round_silos ADD COLUMN epsilon REAL;
                ALTER TABLE round_silos ADD COLUMN delta REAL;
                ALTER TABLE round_silos ADD COLUMN noise_multiplier REAL;
                ALTER TABLE round_silos ADD COLUMN sampling_rate REAL;
                ALTER TABLE round_silos ADD COLUMN steps INTEGER;
                """)
        }
        m.registerMigration("v5-adaptive-clipping") { db in
            // The clip norm each secure round used and the one it chose for the next (adaptive clipping).
            try db.execute(sql: """
                ALTER TABLE rounds ADD COLUMN clip_norm REAL;
                ALTER TABLE rounds ADD COLUMN next_clip_norm REAL;
                """)
        }
        m.registerMigration("v6-hardening") { db in
            // Runs may need repair (a lost checkpoint); rounds discarded by a resume keep what they released.
            try db.execute(sql: """
                CREATE TABLE runs_new (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    spec_json TEXT NOT NULL,
                    spec_toml TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('pending','running','completed','failed','cancelled',
                                                          'needs-repair','budget-exhausted')),
                    rounds_planned INTEGER NOT NULL,
                    completed_rounds INTEGER NOT NULL DEFAULT 0,
                    created_at REAL NOT NULL,
                    message TEXT NOT NULL DEFAULT ''
                );
                INSERT INTO runs_new SELECT id, name, spec_json, spec_toml, status, rounds_planned, completed_rounds,
                                            created_at, message FROM runs;
                DROP TABLE runs;
                ALTER TABLE runs_new RENAME TO runs;
                CREATE TABLE discarded_rounds (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    run_id TEXT NOT NULL REFERENCES runs(id),
                    round INTEGER NOT NULL,
                    checkpoint_sha256 TEXT NOT NULL,
                    unmasked INTEGER,
                    dropped INTEGER,
                    epsilon REAL,
                    reason TEXT NOT NULL,
                    at REAL NOT NULL
                );
                """)
        }
        m.registerMigration("v7-identities") { db in
            // Identities the federation CA knows; tokens only as SHA-256; every certificate it issued.
            try db.execute(sql: """
                CREATE TABLE identities (
                    role TEXT NOT NULL CHECK (role IN ('silo','operator','privacy-officer')),
                    name TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending','active','revoked')),
                    dataset TEXT NOT NULL DEFAULT '',
                    created_at REAL NOT NULL,
                    revoked_at REAL,
                    last_contact REAL,
                    PRIMARY KEY (role, name)
                );
                CREATE TABLE enrolment_tokens (
                    token_sha256 BLOB PRIMARY KEY,
                    role TEXT NOT NULL,
                    name TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    used_at REAL
                );
                CREATE TABLE certificates (
                    serial TEXT PRIMARY KEY,
                    role TEXT NOT NULL,
                    name TEXT NOT NULL,
                    not_before REAL NOT NULL,
                    not_after REAL NOT NULL,
                    issued_at REAL NOT NULL,
                    revoked_at REAL
                );
                CREATE INDEX certificates_identity ON certificates(role, name);
                """)
        }
        m.registerMigration("v8-privacy-ledger") { db in
            // Append-only: entries (their canonical bytes, exactly as hashed and signed), co-signatures added
            // later, and signed checkpoints. Triggers refuse any UPDATE or DELETE, so even a bug cannot rewrite
            // history in place (an attacker with the file can, and `budget verify` then names the entry).
            try db.execute(sql: """
                CREATE TABLE ledger_entries (
                    seq INTEGER PRIMARY KEY,
                    entry BLOB NOT NULL,
                    signatures BLOB NOT NULL
                );
                CREATE TABLE ledger_cosignatures (
                    seq INTEGER NOT NULL REFERENCES ledger_entries(seq),
                    signer TEXT NOT NULL,
                    signature BLOB NOT NULL,
                    PRIMARY KEY (seq, signer)
                );
                CREATE TABLE ledger_checkpoints (
                    size INTEGER PRIMARY KEY,
                    checkpoint BLOB NOT NULL
                );
                CREATE TRIGGER ledger_entries_append_only_u BEFORE UPDATE ON ledger_entries
                    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
                CREATE TRIGGER ledger_entries_append_only_d BEFORE DELETE ON ledger_entries
                    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
                CREATE TRIGGER ledger_cosignatures_append_only_u BEFORE UPDATE ON ledger_cosignatures
                    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
                CREATE TRIGGER ledger_cosignatures_append_only_d BEFORE DELETE ON ledger_cosignatures
                    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
                CREATE TRIGGER ledger_checkpoints_append_only_u BEFORE UPDATE ON ledger_checkpoints
                    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
                CREATE TRIGGER ledger_checkpoints_append_only_d BEFORE DELETE ON ledger_checkpoints
                    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
                """)
        }
        m.registerMigration("v9-signing-keys") { db in
            // The Ed25519 key each identity proved at enrolment (silos: the identity key; people: the key they
            // sign ledger entries with).
            try db.execute(sql: "ALTER TABLE identities ADD COLUMN signing_key BLOB")
        }
        m.registerMigration("v10-checkpoint-cosignatures") { db in
            // Silos co-sign a checkpoint after checking it extends the last one they co-signed (append-only).
            try db.execute(sql: """
                CREATE TABLE ledger_checkpoint_cosignatures (
                    size INTEGER NOT NULL REFERENCES ledger_checkpoints(size),
                    signer TEXT NOT NULL,
                    signature BLOB NOT NULL,
                    PRIMARY KEY (size, signer)
                );
                CREATE TRIGGER ledger_checkpoint_cosignatures_append_only_u BEFORE UPDATE ON ledger_checkpoint_cosignatures
                    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
                CREATE TRIGGER ledger_checkpoint_cosignatures_append_only_d BEFORE DELETE ON ledger_checkpoint_cosignatures
                    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
                """)
        }
        return m
    }
}
