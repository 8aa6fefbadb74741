/**
 * A fake S3 on 127.0.0.1 for the S3 output store's tests: objects in memory, PutObject,
 * GetObject, HeadObject and DeleteObject, path-style and virtual-host (`<bucket>.localhost`).
 * It stands in for AWS, so it checks SigV4 on every request with its own canonical request,
 * string to sign and HMAC chain (node:crypto, not aws4fetch), answering S3's XML errors. It
 * serves through serveHttp, so the same tests run on Bun, Deno and Node.
 */
import { createHash, createHmac } from "node:crypto";
import { serveHttp } from "@kiln/node";

export interface FakeS3Options {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, every request must carry it as X-Amz-Security-Token. */
  sessionToken?: string;
  region?: string;
  /** Buckets that exist; a request to another answers NoSuchBucket. */
  buckets: string[];
}

/** One request the fake answered, for tests to assert its shape. */
export interface RecordedS3Request {
  method: string;
  /** The request path as sent (still percent-encoded). */
  path: string;
  style: "path" | "virtual-host";
  bucket: string | null;
  key: string | null;
  /** Request headers, names lower-cased. */
  headers: Record<string, string>;
  signedHeaders: string[];
  body: string;
  status: number;
  /** S3's error code when the answer was an error. */
  errorCode: string | null;
}

export interface FakeS3 {
  /** `http://127.0.0.1:<port>`, for path-style settings. */
  endpoint: string;
  /** `http://localhost:<port>`, for virtual-host settings (`<bucket>.localhost` resolves to loopback). */
  virtualHostEndpoint: string;
  port: number;
  /** Stored objects by `<bucket>/<key>`. */
  objects: Map<string, { body: Uint8Array; contentType: string }>;
  requests: RecordedS3Request[];
  /** Answers the next `count` requests (after checking their signature) with this error. */
  failNext(status: number, code: string, message: string, count?: number): void;
  stop(): Promise<void>;
}

/** A request as SigV4 sees it: the method, the raw path and query, headers in arrival order, and the payload hash. */
export interface SigV4Request {
  method: string;
  /** Percent-encoded as on the wire. */
  path: string;
  /** The raw query string without "?", percent-encoded as on the wire. */
  query: string;
  headers: Array<[string, string]>;
  payloadHash: string;
}

/** RFC 3986 encoding as SigV4 defines it: unreserved characters stay, every other UTF-8 byte becomes %XX. */
function uriEncode(text: string, keepSlash: boolean): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The canonical request of SigV4 for `signedHeaders`, as S3 builds it: the path encoded once,
 * without the dot-segment normalisation other services do.
 */
export function canonicalRequest(req: SigV4Request, signedHeaders: string[]): string {
  const path = req.path.split("/").map((segment) => uriEncode(decode(segment), false)).join("/") || "/";
  const query = req.query
    .split("&")
    .filter((pair) => pair !== "")
    .map((pair) => {
      const at = pair.indexOf("=");
      const [name, value] = at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
      return [uriEncode(decode(name), false), uriEncode(decode(value), false)] as const;
    })
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
  const headerLines = signedHeaders.map((name) => {
    const values = req.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v.trim().replace(/\s+/g, " "));
    return `${name}:${values.join(",")}\n`;
  });
  return [req.method, path, query, headerLines.join(""), signedHeaders.join(";"), req.payloadHash].join("\n");
}

/** The SigV4 signature of a canonical request: string to sign, then the HMAC chain from the secret. */
export function sigV4Signature(canonical: string, amzDate: string, region: string, service: string, secretAccessKey: string): { stringToSign: string; signature: string } {
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, createHash("sha256").update(canonical).digest("hex")].join("\n");
  let key: Buffer = createHmac("sha256", `AWS4${secretAccessKey}`).update(date).digest();
  for (const part of [region, service, "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
  return { stringToSign, signature: createHmac("sha256", key).update(stringToSign).digest("hex") };
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

class S3Failure {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly message: string,
    readonly extra: Record<string, string> = {},
  ) {}
}

const AUTH_PATTERN = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([a-z0-9\-;]+),\s*Signature=([0-9a-f]{64})$/;
const FIFTEEN_MINUTES = 15 * 60 * 1000;

function parseAmzDate(text: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return null;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** The path as the client sent it, percent-encodings untouched. */
function rawPathOf(request: Request, url: URL): string {
  return request.url.slice(url.origin.length).split("?")[0] || "/";
}

/** Starts the fake on a free port of 127.0.0.1. */
export async function startFakeS3(options: FakeS3Options): Promise<FakeS3> {
  const region = options.region ?? "us-east-1";
  const buckets = new Set(options.buckets);
  const objects = new Map<string, { body: Uint8Array; contentType: string }>();
  const requests: RecordedS3Request[] = [];
  const injected: S3Failure[] = [];

  function verify(request: Request, url: URL, body: Uint8Array): string[] {
    const auth = request.headers.get("authorization");
    if (!auth) throw new S3Failure(403, "AccessDenied", "Access Denied");
    const m = AUTH_PATTERN.exec(auth);
    if (!m) throw new S3Failure(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.");
    const [, accessKeyId = "", date = "", credentialRegion = "", service = "", signedList = "", signature = ""] = m;
    if (accessKeyId !== options.accessKeyId) {
      throw new S3Failure(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", { AWSAccessKeyId: accessKeyId });
    }
    if (credentialRegion !== region) {
      throw new S3Failure(400, "AuthorizationHeaderMalformed", `The authorization header is malformed; the region '${credentialRegion}' is wrong; expecting '${region}'`, { Region: region });
    }
    if (service !== "s3") throw new S3Failure(400, "AuthorizationHeaderMalformed", `The authorization header is malformed; incorrect service '${service}'. This endpoint belongs to 's3'.`);
    const amzDate = request.headers.get("x-amz-date") ?? "";
    const at = parseAmzDate(amzDate);
    if (at === null || amzDate.slice(0, 8) !== date) throw new S3Failure(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
    if (Math.abs(Date.now() - at) > FIFTEEN_MINUTES) {
      throw new S3Failure(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.");
    }
    const signed = signedList.split(";");
    if ([...signed].sort().join(";") !== signedList) throw new S3Failure(403, "SignatureDoesNotMatch", "SignedHeaders must be sorted.");
    for (const required of ["host", "x-amz-date", "x-amz-content-sha256"]) {
      if (!signed.includes(required)) throw new S3Failure(403, "AccessDenied", `${required} must be a signed header.`);
    }
    for (const name of request.headers.keys()) {
      if (name.startsWith("x-amz-") && !signed.includes(name)) {
        throw new S3Failure(403, "AccessDenied", "There were headers present in the request which were not signed", { HeadersNotSigned: name });
      }
    }
    if (options.sessionToken !== undefined && request.headers.get("x-amz-security-token") !== options.sessionToken) {
      throw new S3Failure(403, "InvalidToken", "The provided token is malformed or otherwise invalid.");
    }
    const payloadHash = request.headers.get("x-amz-content-sha256") ?? "";
    if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== createHash("sha256").update(body).digest("hex")) {
      throw new S3Failure(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    const canonical = canonicalRequest(
      { method: request.method, path: rawPathOf(request, url), query: url.search.slice(1), headers: [...request.headers.entries()], payloadHash },
      signed,
    );
    const expected = sigV4Signature(canonical, amzDate, region, "s3", options.secretAccessKey);
    if (expected.signature !== signature) {
      throw new S3Failure(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.", {
        StringToSign: expected.stringToSign,
        CanonicalRequest: canonical,
      });
    }
    return signed;
  }

  function locate(request: Request, url: URL): { style: "path" | "virtual-host"; bucket: string | null; key: string | null } {
    const host = (request.headers.get("host") ?? "").replace(/:\d+$/, "");
    const segments = url.pathname.slice(1).split("/");
    if (host.endsWith(".localhost")) {
      return { style: "virtual-host", bucket: host.slice(0, -".localhost".length), key: url.pathname.length > 1 ? segments.map(decode).join("/") : null };
    }
    const [bucket, ...rest] = segments;
    return { style: "path", bucket: bucket ? decode(bucket) : null, key: rest.length > 0 ? rest.map(decode).join("/") : null };
  }

  function answer(method: string, bucket: string | null, key: string | null, request: Request, body: Uint8Array): Response {
    if (bucket === null || !buckets.has(bucket)) throw new S3Failure(404, "NoSuchBucket", "The specified bucket does not exist", { BucketName: bucket ?? "" });
    if (key === null) throw new S3Failure(501, "NotImplemented", "Only object operations are implemented by the fake.");
    const id = `${bucket}/${key}`;
    const etag = (bytes: Uint8Array) => `"${createHash("md5").update(bytes).digest("hex")}"`;
    switch (method) {
      case "PUT":
        objects.set(id, { body, contentType: request.headers.get("content-type") ?? "binary/octet-stream" });
        return new Response(null, { status: 200, headers: { etag: etag(body) } });
      case "GET":
      case "HEAD": {
        const object = objects.get(id);
        if (!object) throw new S3Failure(404, "NoSuchKey", "The specified key does not exist.", { Key: key });
        const headers = { etag: etag(object.body), "content-type": object.contentType, "content-length": String(object.body.byteLength) };
        return new Response(method === "HEAD" ? null : object.body, { status: 200, headers });
      }
      case "DELETE":
        objects.delete(id);
        return new Response(null, { status: 204 });
      default:
        throw new S3Failure(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    }
  }

  const server = await serveHttp(
    async (request) => {
      const url = new URL(request.url);
      const body = new Uint8Array(await request.arrayBuffer());
      const where = locate(request, url);
      const record: RecordedS3Request = {
        method: request.method,
        path: rawPathOf(request, url),
        ...where,
        headers: Object.fromEntries(request.headers.entries()),
        signedHeaders: [],
        body: new TextDecoder().decode(body),
        status: 0,
        errorCode: null,
      };
      requests.push(record);
      let response: Response;
      try {
        record.signedHeaders = verify(request, url, body);
        const failure = injected.shift();
        if (failure) throw failure;
        response = answer(request.method, where.bucket, where.key, request, body);
      } catch (error) {
        if (!(error instanceof S3Failure)) throw error;
        record.errorCode = error.code;
        const extra = Object.entries(error.extra)
          .map(([tag, text]) => `<${tag}>${escapeXml(text)}</${tag}>`)
          .join("");
        const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${escapeXml(error.message)}</Message>${extra}<RequestId>fake</RequestId></Error>`;
        response = new Response(request.method === "HEAD" ? null : xml, { status: error.status, headers: { "content-type": "application/xml" } });
      }
      record.status = response.status;
      return response;
    },
    { hostname: "127.0.0.1", port: 0 },
  );
  const port = server.port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    virtualHostEndpoint: `http://localhost:${port}`,
    port,
    objects,
    requests,
    failNext(status, code, message, count = 1) {
      for (let i = 0; i < count; i++) injected.push(new S3Failure(status, code, message));
    },
    stop: () => server.close(),
  };
}
