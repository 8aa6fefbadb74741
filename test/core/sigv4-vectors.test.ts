/**
 * SigV4 against AWS's published signature test vectors (the aws-sig-v4-test-suite of the AWS
 * General Reference, "Signature Version 4 test suite"): aws4fetch, which signs the S3 output
 * store's requests, and the fake S3's own verifier, which the output store tests trust to reject
 * bad signatures, must both reproduce the suite's signatures.
 *
 * Every case is signed with the suite's credentials AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY at 20150830T123600Z, region us-east-1, service
 * "service". The expected values below are copied from the suite's .authz, .creq and .sts files.
 */
import { describe, expect, test } from "bun:test";
import { AwsV4Signer } from "aws4fetch";
import { canonicalRequest, sigV4Signature } from "../helpers/fake-s3.ts";

const ACCESS_KEY_ID = "AKIDEXAMPLE";
const SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATETIME = "20150830T123600Z";
const HOST = "example.amazonaws.com";
const SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
// the suite's X-Amz-Security-Token for its post-sts-* cases
const STS_TOKEN =
  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

interface Vector {
  /** The suite's case (its folder name). */
  name: string;
  method: string;
  /** Path and query as in the case's .req. */
  uri: string;
  /** The case's headers other than Host and X-Amz-Date, in .req order. */
  headers: Array<[string, string]>;
  body: string;
  /** SignedHeaders and Signature of the case's .authz. */
  signedHeaders: string;
  signature: string;
  /** False for cases fetch's Headers cannot express (a repeated header name), checked on the fake's verifier only. */
  viaFetch: boolean;
  /** Only post-x-www-form-urlencoded: aws4fetch leaves content-type unsigned unless told to sign all headers. */
  allHeaders?: boolean;
}

const VECTORS: Vector[] = [
  {
    name: "get-vanilla",
    method: "GET",
    uri: "/",
    headers: [],
    body: "",
    signedHeaders: "host;x-amz-date",
    signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    viaFetch: true,
  },
  {
    name: "get-vanilla-query-order-key",
    method: "GET",
    uri: "/?Param1=value2&Param1=Value1",
    headers: [],
    body: "",
    signedHeaders: "host;x-amz-date",
    signature: "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
    viaFetch: true,
  },
  {
    name: "get-vanilla-query-order-key-case",
    method: "GET",
    uri: "/?Param2=value2&Param1=value1",
    headers: [],
    body: "",
    signedHeaders: "host;x-amz-date",
    signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    viaFetch: true,
  },
  {
    name: "get-vanilla-query-order-value",
    method: "GET",
    uri: "/?Param1=value2&Param1=value1",
    headers: [],
    body: "",
    signedHeaders: "host;x-amz-date",
    signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    viaFetch: true,
  },
  {
    name: "get-vanilla-utf8-query",
    method: "GET",
    uri: "/?\u1234=bar",
    headers: [],
    body: "",
    signedHeaders: "host;x-amz-date",
    signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    viaFetch: true,
  },
  {
    name: "get-unreserved",
    method: "GET",
    uri: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    headers: [],
    body: "",
    signedHeaders: "host;x-amz-date",
    signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    viaFetch: true,
  },
  {
    name: "get-header-value-trim",
    method: "GET",
    uri: "/",
    headers: [
      ["My-Header1", "value1"],
      ["My-Header2", '"a   b   c"'],
    ],
    body: "",
    signedHeaders: "host;my-header1;my-header2;x-amz-date",
    signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    viaFetch: true,
  },
  {
    name: "get-header-key-duplicate",
    method: "GET",
    uri: "/",
    headers: [
      ["My-Header1", "value2"],
      ["My-Header1", "value2"],
      ["My-Header1", "value1"],
    ],
    body: "",
    signedHeaders: "host;my-header1;x-amz-date",
    signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    viaFetch: false,
  },
  {
    name: "post-vanilla",
    method: "POST",
    uri: "/",
    headers: [],
    body: "",
    signedHeaders: "host;x-amz-date",
    signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    viaFetch: true,
  },
  {
    name: "post-header-key-sort",
    method: "POST",
    uri: "/",
    headers: [["My-Header1", "value1"]],
    body: "",
    signedHeaders: "host;my-header1;x-amz-date",
    signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    viaFetch: true,
  },
  {
    // the suite's .authz signs content-type;host;x-amz-date (its .creq also lists
    // content-length, which the published signature does not cover)
    name: "post-x-www-form-urlencoded",
    method: "POST",
    uri: "/",
    headers: [["Content-Type", "application/x-www-form-urlencoded"]],
    body: "Param1=value1",
    signedHeaders: "content-type;host;x-amz-date",
    signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    viaFetch: true,
    allHeaders: true,
  },
  {
    name: "post-sts-header-before",
    method: "POST",
    uri: "/",
    headers: [["X-Amz-Security-Token", STS_TOKEN]],
    body: "",
    signedHeaders: "host;x-amz-date;x-amz-security-token",
    signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    viaFetch: true,
  },
];

function authz(v: Vector): string {
  return `AWS4-HMAC-SHA256 Credential=${SCOPE}, SignedHeaders=${v.signedHeaders}, Signature=${v.signature}`;
}

describe("aws4fetch reproduces the AWS SigV4 test suite", () => {
  for (const v of VECTORS.filter((v) => v.viaFetch)) {
    test(v.name, async () => {
      const sts = v.headers.find(([name]) => name === "X-Amz-Security-Token");
      const signer = new AwsV4Signer({
        method: v.method,
        url: `https://${HOST}${v.uri}`,
        // the session token goes in as a credential; aws4fetch adds and signs the header itself
        headers: v.headers.filter(([name]) => name !== "X-Amz-Security-Token"),
        body: v.body,
        accessKeyId: ACCESS_KEY_ID,
        secretAccessKey: SECRET_ACCESS_KEY,
        sessionToken: sts?.[1],
        service: "service",
        region: "us-east-1",
        datetime: DATETIME,
        allHeaders: v.allHeaders,
      });
      const signed = await signer.sign();
      expect(signed.headers.get("authorization")).toBe(authz(v));
      expect(signed.headers.get("x-amz-date")).toBe(DATETIME);
    });
  }
});

describe("the fake S3's verifier reproduces the AWS SigV4 test suite", () => {
  const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  // the hash of the body Param1=value1, from the suite's post-x-www-form-urlencoded.creq
  const formHash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";

  for (const v of VECTORS) {
    test(v.name, () => {
      const url = new URL(`https://${HOST}${v.uri}`);
      const canonical = canonicalRequest(
        {
          method: v.method,
          path: url.pathname,
          query: url.search.slice(1),
          headers: [["Host", HOST], ...v.headers, ["X-Amz-Date", DATETIME]],
          payloadHash: v.body === "" ? emptyHash : formHash,
        },
        v.signedHeaders.split(";"),
      );
      expect(sigV4Signature(canonical, DATETIME, "us-east-1", "service", SECRET_ACCESS_KEY).signature).toBe(v.signature);
    });
  }

  test("get-vanilla-query-order-key: the canonical request and string to sign, line for line", () => {
    const canonical = canonicalRequest(
      { method: "GET", path: "/", query: "Param1=value2&Param1=Value1", headers: [["Host", HOST], ["X-Amz-Date", DATETIME]], payloadHash: emptyHash },
      ["host", "x-amz-date"],
    );
    // get-vanilla-query-order-key.creq and .sts
    expect(canonical).toBe(
      `GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n${emptyHash}`,
    );
    expect(sigV4Signature(canonical, DATETIME, "us-east-1", "service", SECRET_ACCESS_KEY).stringToSign).toBe(
      "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
    );
  });

  test("get-header-key-duplicate: repeated header values join with commas in arrival order", () => {
    const canonical = canonicalRequest(
      {
        method: "GET",
        path: "/",
        query: "",
        headers: [["Host", HOST], ["My-Header1", "value2"], ["My-Header1", "value2"], ["My-Header1", "value1"], ["X-Amz-Date", DATETIME]],
        payloadHash: emptyHash,
      },
      ["host", "my-header1", "x-amz-date"],
    );
    // get-header-key-duplicate.creq
    expect(canonical).toBe(
      `GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n${emptyHash}`,
    );
  });

  test("a changed secret, date or region gives another signature", () => {
    const canonical = canonicalRequest(
      { method: "GET", path: "/", query: "", headers: [["Host", HOST], ["X-Amz-Date", DATETIME]], payloadHash: emptyHash },
      ["host", "x-amz-date"],
    );
    const published = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    expect(sigV4Signature(canonical, DATETIME, "us-east-1", "service", `${SECRET_ACCESS_KEY}x`).signature).not.toBe(published);
    expect(sigV4Signature(canonical, "20150831T123600Z", "us-east-1", "service", SECRET_ACCESS_KEY).signature).not.toBe(published);
    expect(sigV4Signature(canonical, DATETIME, "us-west-2", "service", SECRET_ACCESS_KEY).signature).not.toBe(published);
  });
});
