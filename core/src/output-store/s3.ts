/**
 * Block outputs in S3-compatible object storage (kiln.yaml `output_store: {type: s3}`): AWS S3,
 * MinIO, Cloudflare R2 and the like. Requests are signed with SigV4 by aws4fetch, which needs
 * only fetch and WebCrypto, so this store runs on Bun, Deno, Node and Workers alike.
 */
import { AwsClient } from "aws4fetch";
import { OutputMissingError, outputPath, type OutputStore } from "../outputs.ts";
import type { OutputStoreSettings } from "../project/types.ts";
import { encodeBlockOutput } from "./encode.ts";
import { messageOf } from "../errors.ts";

/** kiln.yaml's `output_store` when its type is s3. */
export type S3OutputStoreSettings = Extract<OutputStoreSettings, { type: "s3" }>;

/** Raised when the output store's settings or credentials cannot work; says what to set. */
export class OutputStoreSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutputStoreSettingsError";
  }
}

/** Credentials for the S3 output store, and the variables they came from (for messages, never the values). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** The access-key variable read, e.g. KILN_S3_ACCESS_KEY_ID. */
  source: string;
}

const CREDENTIAL_SETS = [
  { id: "KILN_S3_ACCESS_KEY_ID", secret: "KILN_S3_SECRET_ACCESS_KEY", token: "KILN_S3_SESSION_TOKEN" },
  { id: "AWS_ACCESS_KEY_ID", secret: "AWS_SECRET_ACCESS_KEY", token: "AWS_SESSION_TOKEN" },
] as const;

/**
 * The S3 output store's credentials from the environment: KILN_S3_* when either of its keys is
 * set (so kiln's store can use other credentials than the rest of the process), else AWS_*. A
 * set is taken whole, never mixed, so a secret is never paired with another set's key id.
 */
export function s3CredentialsFromEnv(env: Record<string, string | undefined>): S3Credentials {
  for (const set of CREDENTIAL_SETS) {
    const id = env[set.id];
    const secret = env[set.secret];
    if (!id && !secret) continue;
    if (!id || !secret) {
      throw new OutputStoreSettingsError(
        `output_store (s3): ${id ? set.id : set.secret} is set but ${id ? set.secret : set.id} is not: set both`,
      );
    }
    const token = env[set.token];
    return { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}), source: set.id };
  }
  throw new OutputStoreSettingsError(
    "output_store (s3) needs credentials: set KILN_S3_ACCESS_KEY_ID and KILN_S3_SECRET_ACCESS_KEY " +
      "(and KILN_S3_SESSION_TOKEN for temporary credentials), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
  );
}

/** The credentials as KILN_S3_* variables, for a block that runs in a container to reach the store. */
export function s3CredentialEnv(credentials: S3Credentials): Record<string, string> {
  const env: Record<string, string> = {
    KILN_S3_ACCESS_KEY_ID: credentials.accessKeyId,
    KILN_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  };
  if (credentials.sessionToken) env.KILN_S3_SESSION_TOKEN = credentials.sessionToken;
  return env;
}

/** Raised when S3 answers a request with an error other than a missing key. */
export class S3OutputError extends Error {
  constructor(
    readonly method: string,
    readonly bucket: string,
    readonly key: string,
    /** The HTTP status, or null when no answer came (a network error). */
    readonly status: number | null,
    /** S3's error code (SignatureDoesNotMatch, NoSuchBucket, ...), when its answer had one. */
    readonly code: string | null,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`output_store (s3): ${method} s3://${bucket}/${key} failed: ${detail}`, options);
    this.name = "S3OutputError";
  }
}

export interface S3OutputStoreOptions {
  /** How often a request answered 5xx or 429 is tried again (with jittered backoff); default 3. */
  retries?: number;
}

/** The object URL of a key: `<endpoint>/<bucket>/<key>` path-style, else `<bucket>.<endpoint host>/<key>`. */
export function s3ObjectUrl(settings: S3OutputStoreSettings, key: string): string {
  let base: URL;
  const endpoint = settings.endpoint ?? `https://s3.${settings.region}.amazonaws.com`;
  try {
    base = new URL(endpoint);
  } catch {
    throw new OutputStoreSettingsError(`kiln.yaml: output_store.endpoint: "${endpoint}" is not a URL (e.g. https://s3.example.com or http://127.0.0.1:9000)`);
  }
  if (base.protocol !== "https:" && base.protocol !== "http:") {
    throw new OutputStoreSettingsError(`kiln.yaml: output_store.endpoint: "${endpoint}" is not an http:// or https:// URL`);
  }
  // each segment encoded alone so a key's "/" stay separators and ":" (dynamic block runs) is escaped
  const encodedKey = key.split("/").map(encodeURIComponent).join("/");
  const basePath = base.pathname.replace(/\/+$/, "");
  if (settings.forcePathStyle) return `${base.origin}${basePath}/${encodeURIComponent(settings.bucket)}/${encodedKey}`;
  return `${base.protocol}//${settings.bucket}.${base.host}${basePath}/${encodedKey}`;
}

const utf8 = new TextEncoder();

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

function xmlText(xml: string, tag: string): string | null {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  if (!match?.[1]) return null;
  return match[1]
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

/** What to check, for the errors a user can fix from kiln's side. */
function hintFor(code: string | null, credentials: S3Credentials): string {
  switch (code) {
    case "SignatureDoesNotMatch":
      return ` (check the secret key in ${credentials.source.replace("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")}, and output_store.region)`;
    case "InvalidAccessKeyId":
      return ` (check ${credentials.source})`;
    case "ExpiredToken":
    case "InvalidToken":
      return ` (check ${credentials.source.replace("ACCESS_KEY_ID", "SESSION_TOKEN")})`;
    case "NoSuchBucket":
      return " (check output_store.bucket and output_store.endpoint in kiln.yaml)";
    case "AuthorizationHeaderMalformed":
      return " (check output_store.region in kiln.yaml)";
    case "AccessDenied":
      return " (S3 also answers AccessDenied for a missing key when the credentials may not list the bucket)";
    default:
      return "";
  }
}

/**
 * An output store over an S3 bucket: each output is the object `<prefix><outputPath>`, JSON. The
 * endpoint is checked here, so a bad one fails when the project opens, not at the first block.
 */
export function s3OutputStore(settings: S3OutputStoreSettings, credentials: S3Credentials, options: S3OutputStoreOptions = {}): OutputStore {
  s3ObjectUrl(settings, "");
  const client = new AwsClient({
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    service: "s3",
    region: settings.region,
    retries: options.retries ?? 3,
    // waits of up to 0.2, 0.4, 0.8 s: aws4fetch's 50 ms start is short for S3's SlowDown
    initRetryMs: 200,
  });
  const keyOf = (pipelineUuid: string, partition: string, blockUuid: string) => settings.prefix + outputPath(pipelineUuid, partition, blockUuid);

  async function send(method: "PUT" | "GET", key: string, body?: string): Promise<Response> {
    const headers: Record<string, string> = {
      // the payload's hash is signed, so S3 refuses a body changed or cut on the way
      "x-amz-content-sha256": body === undefined ? EMPTY_SHA256 : await sha256Hex(body),
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      return await client.fetch(s3ObjectUrl(settings, key), { method, headers, body });
    } catch (error) {
      const where = settings.endpoint ?? `AWS S3 in ${settings.region}`;
      throw new S3OutputError(method, settings.bucket, key, null, null, `cannot reach ${where}: ${messageOf(error)}`, { cause: error });
    }
  }

  async function failure(method: string, key: string, response: Response): Promise<S3OutputError> {
    const xml = await response.text().catch(() => "");
    const code = xmlText(xml, "Code");
    const message = xmlText(xml, "Message");
    const detail = `HTTP ${response.status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}${hintFor(code, credentials)}`;
    return new S3OutputError(method, settings.bucket, key, response.status, code, detail);
  }

  return {
    async write(pipelineUuid, partition, blockUuid, value) {
      const key = keyOf(pipelineUuid, partition, blockUuid);
      const response = await send("PUT", key, encodeBlockOutput(pipelineUuid, blockUuid, value));
      if (!response.ok) throw await failure("PUT", key, response);
      await response.body?.cancel();
    },
    async read(pipelineUuid, partition, blockUuid) {
      const key = keyOf(pipelineUuid, partition, blockUuid);
      const response = await send("GET", key);
      if (response.status === 404) {
        const error = await failure("GET", key, response);
        // a missing bucket is a setting to fix, not an upstream that has not run
        if (error.code === null || error.code === "NoSuchKey") throw new OutputMissingError(`s3://${settings.bucket}/${key}`);
        throw error;
      }
      if (!response.ok) throw await failure("GET", key, response);
      const text = await response.text();
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new S3OutputError("GET", settings.bucket, key, response.status, null, `the object is not JSON (${text.length} characters): was it written by kiln?`);
      }
    },
  };
}
