/**
 * An independent AWS Signature Version 4 check for the fake AWS services: it rebuilds the
 * canonical request, the string to sign and the HMAC key chain itself (node:crypto), from the
 * request as it arrived, so a client that signs wrongly is refused as AWS would refuse it.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** An access key the fake service knows. */
export interface FakeAwsCredential {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, requests must carry it as X-Amz-Security-Token (signed). */
  sessionToken?: string;
}

/** Why a request was refused, in AWS's terms (the JSON protocols' `__type` and HTTP status). */
export interface SigV4Refusal {
  status: number;
  type: "UnrecognizedClientException" | "InvalidSignatureException" | "IncompleteSignatureException" | "MissingAuthenticationTokenException";
  message: string;
}

/** A verified request: who signed it, for which scope. */
export interface SigV4Identity {
  accessKeyId: string;
  region: string;
  service: string;
}

const ALGORITHM = "AWS4-HMAC-SHA256";
/** AWS refuses a request whose X-Amz-Date is further than this from its clock. */
const MAX_SKEW_MS = 15 * 60 * 1000;

const sha256Hex = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data, "utf8").digest();

/** RFC 3986 encoding as SigV4 wants it: everything but unreserved characters, as %XX upper case. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The canonical path for services other than S3: each segment normalised and encoded once more
 * over its form on the wire (the path as received is already encoded once).
 */
function canonicalPath(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const path = `/${segments.map((s) => uriEncode(s)).join("/")}`;
  return rawPath.endsWith("/") && path !== "/" ? `${path}/` : path;
}

function canonicalQuery(search: URLSearchParams): string {
  return [...search.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

function parseAuthorization(header: string): { credential: string; signedHeaders: string; signature: string } | null {
  if (!header.startsWith(`${ALGORITHM} `)) return null;
  const fields = new Map<string, string>();
  for (const part of header.slice(ALGORITHM.length + 1).split(",")) {
    const at = part.indexOf("=");
    if (at > 0) fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeaders || !signature) return null;
  return { credential, signedHeaders, signature };
}

/** "20261122T043800Z" as a time, or NaN. */
function parseAmzDate(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/**
 * Verifies a request's SigV4 Authorization header against the known credentials, for the
 * given service and region. Returns who signed it, or a refusal shaped as AWS answers it.
 */
export function verifySigV4(
  request: { method: string; url: string; headers: Headers; body: Uint8Array },
  options: { credentials: FakeAwsCredential[]; service: string; region: string; now?: number },
): SigV4Identity | SigV4Refusal {
  const refuse = (status: number, type: SigV4Refusal["type"], message: string): SigV4Refusal => ({ status, type, message });
  const header = request.headers.get("authorization");
  if (!header) return refuse(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
  const auth = parseAuthorization(header);
  if (!auth) return refuse(400, "IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters of the AWS4-HMAC-SHA256 algorithm");

  const [accessKeyId, date, region, service, terminator, ...rest] = auth.credential.split("/");
  if (!accessKeyId || !date || !region || !service || terminator !== "aws4_request" || rest.length > 0) {
    return refuse(400, "IncompleteSignatureException", "Credential should be scoped to a valid region, service and aws4_request");
  }
  const known = options.credentials.find((c) => c.accessKeyId === accessKeyId);
  if (!known) return refuse(400, "UnrecognizedClientException", "The security token included in the request is invalid.");
  if (region !== options.region) return refuse(403, "InvalidSignatureException", `Credential should be scoped to a valid region, not '${region}'.`);
  if (service !== options.service) return refuse(403, "InvalidSignatureException", `Credential should be scoped to correct service: '${options.service}'.`);

  const amzDate = request.headers.get("x-amz-date") ?? "";
  const at = parseAmzDate(amzDate);
  if (Number.isNaN(at)) return refuse(400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed");
  if (amzDate.slice(0, 8) !== date) return refuse(403, "InvalidSignatureException", "Credential should be scoped to the date of X-Amz-Date.");
  if (Math.abs((options.now ?? Date.now()) - at) > MAX_SKEW_MS) return refuse(403, "InvalidSignatureException", "Signature expired: the request time is too far from the server time.");

  const signed = auth.signedHeaders.split(";");
  if (!signed.includes("host") || !signed.includes("x-amz-date")) {
    return refuse(403, "InvalidSignatureException", "The request must sign the host and x-amz-date headers.");
  }
  if (known.sessionToken !== undefined) {
    if (request.headers.get("x-amz-security-token") !== known.sessionToken) return refuse(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
    if (!signed.includes("x-amz-security-token")) return refuse(403, "InvalidSignatureException", "The request must sign x-amz-security-token.");
  }

  const payloadHash = sha256Hex(request.body);
  const declared = request.headers.get("x-amz-content-sha256");
  if (declared !== null && declared !== "UNSIGNED-PAYLOAD" && declared !== payloadHash) {
    return refuse(400, "InvalidSignatureException", "The provided x-amz-content-sha256 header does not match what was computed.");
  }

  const url = new URL(request.url);
  const canonicalHeaders = [...signed]
    .sort()
    .map((name) => `${name}:${(request.headers.get(name) ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const canonicalRequest = [request.method.toUpperCase(), canonicalPath(url.pathname), canonicalQuery(url.searchParams), canonicalHeaders, auth.signedHeaders, payloadHash].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${known.secretAccessKey}`, date), region), service), "aws4_request");
  const expected = createHmac("sha256", key).update(stringToSign, "utf8").digest();
  const given = /^[0-9a-f]{64}$/.test(auth.signature) ? Buffer.from(auth.signature, "hex") : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    // as AWS's JSON services do: the canonical request and string to sign follow (with any signed token header)
    return refuse(
      403,
      "InvalidSignatureException",
      `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'${canonicalRequest}'\n\nThe String-to-Sign should have been\n'${stringToSign}'\n`,
    );
  }
  return { accessKeyId, region, service };
}

/** Whether verifySigV4 refused the request. */
export function isRefusal(result: SigV4Identity | SigV4Refusal): result is SigV4Refusal {
  return "type" in result;
}
