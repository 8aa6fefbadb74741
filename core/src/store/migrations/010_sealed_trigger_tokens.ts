/**
 * Trigger tokens stored sealed (trigger-tokens.ts): the token encrypted under the secret key and
 * its keyed digest, indexed for the lookup on the public trigger routes. The old `token` column
 * holds plaintext only for rows written before this migration: a migration has no key to seal
 * them with, so the first process that opens the store with the key seals them and clears the
 * plaintext (Store.sealPlaintextTokens); until then they are still accepted.
 */
export const name = "sealed_trigger_tokens";

export const statements: string[] = [
  `ALTER TABLE pipeline_schedules ADD COLUMN token_sealed TEXT`,
  `ALTER TABLE pipeline_schedules ADD COLUMN token_digest TEXT`,
  `CREATE INDEX pipeline_schedules_token_digest ON pipeline_schedules (token_digest) WHERE token_digest IS NOT NULL`,
  // the index on the plaintext column stays: dropping it here would leave its pages, tokens and
  // all, in the file's free list; sealing empties it entry by entry, overwriting each
];
