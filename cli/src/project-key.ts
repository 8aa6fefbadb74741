/**
 * The secret key of a project's database, as every kiln process resolves it: KILN_SECRET_KEY,
 * else the key file beside the database, made on first need. A new key file is refused when
 * the database already holds values encrypted under some key (secrets, trigger tokens): that
 * key was KILN_SECRET_KEY or a key file this process does not see, and a second key would
 * leave those values unreadable.
 */
import { existsSync } from "node:fs";
import type { Store } from "@kiln/core/store";
import { resolveSecretKey, secretKeyFile, type SecretKeySource } from "@kiln/node";
import { UsageError } from "./errors.ts";
import { kilnSecret } from "./kiln-env.ts";
import { messageOf } from "@kiln/core";

/** Resolves the key (making the key file when `create` allows and nothing is encrypted yet); null without `create` and without a key. */
export async function projectSecretKey(root: string, databaseUrl: string, store: Store, { create }: { create: boolean }): Promise<SecretKeySource | null> {
  const rawKey = kilnSecret("KILN_SECRET_KEY");
  if (!rawKey && create) {
    const file = secretKeyFile(root, databaseUrl);
    if (!existsSync(file)) {
      const { secrets, tokens } = await store.encryptedValueCounts();
      const held = [secrets > 0 ? `${secrets} secret(s)` : "", tokens > 0 ? `${tokens} trigger token(s)` : ""].filter(Boolean).join(" and ");
      if (held) throw new UsageError(`KILN_SECRET_KEY is not set, and the database holds ${held} encrypted under it (there is no key file ${file}): set it and start again`);
    }
  }
  try {
    return await resolveSecretKey(root, databaseUrl, rawKey, { create });
  } catch (error) {
    const message = messageOf(error);
    throw new UsageError(rawKey ? `KILN_SECRET_KEY: ${message.replace(/^KILN_SECRET_KEY: /, "")}` : message);
  }
}

/**
 * Seals the trigger tokens an older kiln stored in plaintext (migration 10 had no key to do it),
 * before anything is served. The log is the caller's: this module is on every command's path
 * (kiln run-block too), which must not load the scheduler package for a logger.
 */
export async function sealPlaintextTokens(store: Store, log: { info(message: string): void }): Promise<void> {
  const sealed = await store.sealPlaintextTokens();
  if (sealed > 0) log.info(`sealed ${sealed} trigger token(s) an older kiln stored in plaintext`);
}
