/**
 * OAuth access tokens for Google APIs, from a service-account key (a JWT signed with the key,
 * exchanged at the key's token_uri) or from the metadata server when running on Google Cloud.
 * Only fetch and WebCrypto (through jose), so it works on Cloudflare Workers too. Neither keys
 * nor tokens ever appear in an error message.
 */
import { importPKCS8, SignJWT } from "jose";
import { messageOf } from "@kiln/core";

/** The OAuth scope every call here needs (Run and Logging both accept it). */
export const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";
export const DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token";
export const DEFAULT_METADATA_URL = "http://metadata.google.internal";

/** Refresh this long before a token's expiry, so a call never goes out with a token about to lapse. */
const REFRESH_MARGIN_MS = 5 * 60_000;
/** How long a signed assertion is valid for; Google accepts at most an hour. */
const ASSERTION_LIFETIME_S = 3600;

/** The part of fetch the clients use (narrower than the runtime's, so any runtime's fetch fits). */
export type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** The fields of a service-account JSON key that signing needs. */
export interface ServiceAccountKey {
  clientEmail: string;
  privateKey: string;
  privateKeyId: string | null;
  projectId: string | null;
  tokenUri: string;
}

/** A failure to get a token: the message says where the credentials came from, never what they are. */
export class GoogleAuthError extends Error {
  override readonly name = "GoogleAuthError";
}

/** Something that hands out bearer tokens, cached until shortly before they expire. */
export interface TokenSource {
  /** A valid access token (from the cache when it has one). */
  token(): Promise<string>;
  /** Forgets the cached token, after an API refused it. */
  invalidate(): void;
  /** The project the credentials belong to, when they say. */
  projectId(): Promise<string | null>;
}

/** Parses a service-account key's JSON; `source` names where it came from, for errors. */
export function parseServiceAccountKey(text: string, source: string): ServiceAccountKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new GoogleAuthError(`${source}: not JSON (expected a service-account key file's contents)`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new GoogleAuthError(`${source}: expected a service-account key (a JSON object)`);
  }
  const key = parsed as Record<string, unknown>;
  if (key.type !== "service_account") {
    throw new GoogleAuthError(`${source}: expected a key of type "service_account", got ${JSON.stringify(key.type ?? null)}`);
  }
  const field = (name: string): string | null => (typeof key[name] === "string" && key[name] !== "" ? (key[name] as string) : null);
  const clientEmail = field("client_email");
  const privateKey = field("private_key");
  if (clientEmail === null) throw new GoogleAuthError(`${source}: the key has no client_email`);
  if (privateKey === null) throw new GoogleAuthError(`${source}: the key has no private_key`);
  return {
    clientEmail,
    privateKey,
    privateKeyId: field("private_key_id"),
    projectId: field("project_id"),
    tokenUri: field("token_uri") ?? DEFAULT_TOKEN_URI,
  };
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Reads a token endpoint's JSON answer, or throws naming `what` and the endpoint's own error code. */
async function readTokenResponse(response: Response, what: string, now: () => number): Promise<CachedToken> {
  const received = now();
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON: reported below by status
  }
  if (!response.ok) {
    // OAuth errors are {error, error_description}: codes and prose, no credentials
    const code = typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    const description = typeof body.error_description === "string" ? `: ${body.error_description}` : "";
    throw new GoogleAuthError(`${what} refused (${response.status}): ${code}${description}`);
  }
  if (typeof body.access_token !== "string" || body.access_token === "") throw new GoogleAuthError(`${what}: the answer has no access_token`);
  const expiresIn = typeof body.expires_in === "number" ? body.expires_in : 3600;
  return { token: body.access_token, expiresAt: received + expiresIn * 1000 };
}

/** Caching and single-flight shared by both token sources. */
class CachingTokenSource implements TokenSource {
  #cached: CachedToken | null = null;
  #pending: Promise<string> | null = null;

  constructor(
    private readonly fetchToken: () => Promise<CachedToken>,
    private readonly project: () => Promise<string | null>,
    private readonly now: () => number,
  ) {}

  token(): Promise<string> {
    if (this.#cached && this.#cached.expiresAt - REFRESH_MARGIN_MS > this.now()) return Promise.resolve(this.#cached.token);
    // concurrent callers share one exchange
    this.#pending ??= this.fetchToken().then(
      (fresh) => {
        this.#cached = fresh;
        this.#pending = null;
        return fresh.token;
      },
      (error: unknown) => {
        this.#pending = null;
        throw error;
      },
    );
    return this.#pending;
  }

  invalidate(): void {
    this.#cached = null;
  }

  projectId(): Promise<string | null> {
    return this.project();
  }
}

/** Tokens for a service account: an RS256 JWT signed with its key, exchanged at its token_uri. */
export function serviceAccountTokenSource(key: ServiceAccountKey, source: string, fetcher: Fetch, now: () => number = Date.now): TokenSource {
  let signingKey: Promise<CryptoKey> | null = null;
  return new CachingTokenSource(
    async () => {
      signingKey ??= importPKCS8(key.privateKey, "RS256").catch(() => {
        signingKey = null;
        throw new GoogleAuthError(`${source}: the key's private_key is not an RSA private key in PKCS#8 PEM form`);
      });
      const issuedAt = Math.floor(now() / 1000);
      const header: { alg: "RS256"; typ: "JWT"; kid?: string } = { alg: "RS256", typ: "JWT" };
      if (key.privateKeyId) header.kid = key.privateKeyId;
      const assertion = await new SignJWT({ scope: CLOUD_PLATFORM_SCOPE })
        .setProtectedHeader(header)
        .setIssuer(key.clientEmail)
        .setSubject(key.clientEmail)
        .setAudience(key.tokenUri)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + ASSERTION_LIFETIME_S)
        .sign(await signingKey);
      const what = `the token endpoint ${key.tokenUri} (service account ${key.clientEmail}, key from ${source})`;
      let response: Response;
      try {
        response = await fetcher(key.tokenUri, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }).toString(),
        });
      } catch (error) {
        throw new GoogleAuthError(`${what} could not be reached: ${messageOf(error)}`);
      }
      return readTokenResponse(response, what, now);
    },
    async () => key.projectId,
    now,
  );
}

/** Tokens from the metadata server of the Google Cloud machine kiln runs on (its attached service account). */
export function metadataTokenSource(baseUrl: string, fetcher: Fetch, now: () => number = Date.now): TokenSource {
  const get = async (path: string, what: string): Promise<Response> => {
    try {
      return await fetcher(`${baseUrl}/computeMetadata/v1/${path}`, { headers: { "Metadata-Flavor": "Google" } });
    } catch (error) {
      throw new GoogleAuthError(
        `${what}: the metadata server at ${baseUrl} could not be reached (${messageOf(error)}); ` +
          "off Google Cloud, give a service-account key (executor_config.credentials_env or credentials_file)",
      );
    }
  };
  let project: Promise<string | null> | null = null;
  return new CachingTokenSource(
    async () => readTokenResponse(await get("instance/service-accounts/default/token", "access token"), `the metadata server at ${baseUrl}`, now),
    () => {
      project ??= get("project/project-id", "project id").then(
        async (response) => (response.ok ? (await response.text()).trim() || null : null),
        (error: unknown) => {
          project = null; // unreachable now is not unreachable forever
          throw error;
        },
      );
      return project;
    },
    now,
  );
}
