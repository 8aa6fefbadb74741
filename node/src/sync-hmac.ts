/**
 * The runtime's synchronous HMAC-SHA256 for core's secret digests (see SyncHmacFactory in
 * @kiln/core/runtime): node:crypto signs on the calling thread, where WebCrypto's sign on Bun
 * hands the work to another thread and the request waits for that thread's wake (most of an API
 * trigger's p99 by profile). The key is held as a KeyObject, outside the JS heap.
 */
import { createHmac, createSecretKey } from "node:crypto";
import type { SyncHmacFactory } from "@kiln/core/runtime";

/** HMAC-SHA256 under `key` (copied), synchronously. */
export const syncHmacSha256: SyncHmacFactory = (key) => {
  const keyObject = createSecretKey(key);
  return (data) => createHmac("sha256", keyObject).update(data).digest();
};
