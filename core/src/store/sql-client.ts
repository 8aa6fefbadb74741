/**
 * The part of a libSQL client the store uses. @libsql/client's Client satisfies it (remote
 * servers, Workers); so does the node package's local client with its statement cache.
 */
import type { Client } from "@libsql/client";

export type SqlClient = Pick<Client, "execute" | "batch" | "close">;
