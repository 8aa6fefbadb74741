/** Store operations on secrets: only ciphertext is stored; values never leave through a list. */
import type { SqlClient } from "./sql-client.ts";
import { decryptSecret, encryptSecret } from "../secrets.ts";

/** Creates or replaces a secret. */
export async function putSecret(client: SqlClient, key: CryptoKey, name: string, value: string, now: number): Promise<void> {
  const stored = await encryptSecret(key, name, value);
  await client.execute({
    sql: `INSERT INTO secrets (name, value_encrypted, created_at, updated_at) VALUES (?, ?, ?, ?)
          ON CONFLICT (name) DO UPDATE SET value_encrypted = excluded.value_encrypted, updated_at = excluded.updated_at`,
    args: [name, stored, now, now],
  });
}

/** The decrypted value of a secret, or null if there is none by that name. */
export async function getSecret(client: SqlClient, key: CryptoKey, name: string): Promise<string | null> {
  const rs = await client.execute({ sql: "SELECT value_encrypted FROM secrets WHERE name = ?", args: [name] });
  const row = rs.rows[0];
  return row ? decryptSecret(key, name, String(row.value_encrypted)) : null;
}

/** Names of the stored secrets, sorted. */
export async function listSecretNames(client: SqlClient): Promise<string[]> {
  const rs = await client.execute("SELECT name FROM secrets ORDER BY name");
  return rs.rows.map((r) => String(r.name));
}

/** Deletes a secret; true if there was one. */
export async function deleteSecret(client: SqlClient, name: string): Promise<boolean> {
  const rs = await client.execute({ sql: "DELETE FROM secrets WHERE name = ?", args: [name] });
  return rs.rowsAffected > 0;
}

/** Whether any secret is stored (the server refuses to start without a key then). */
export async function hasSecrets(client: SqlClient): Promise<boolean> {
  const rs = await client.execute("SELECT 1 FROM secrets LIMIT 1");
  return rs.rows.length > 0;
}

/** How many secrets are stored. */
export async function secretCount(client: SqlClient): Promise<number> {
  const rs = await client.execute("SELECT count(*) AS n FROM secrets");
  return Number(rs.rows[0]?.n ?? 0);
}
