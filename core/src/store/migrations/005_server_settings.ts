/** Server state shared by replicas: small settings (the session signing key) and ended sessions. */
export const name = "server_settings";

export const statements: string[] = [
  `CREATE TABLE server_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`,
  // session tokens are signed, not stored: a logged-out one is remembered here until it expires
  `CREATE TABLE revoked_sessions (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  )`,
  `CREATE INDEX revoked_sessions_expiry ON revoked_sessions (expires_at)`,
];
