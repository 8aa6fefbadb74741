/**
 * X-Forwarded-Proto and X-Forwarded-Host are believed only with trust_proxy (KILN_TRUST_PROXY):
 * without it a request cannot make a page show a host of its choosing, pass the same-origin
 * check with a forged host, or change the cookie's flags; with it, kiln behind a TLS proxy shows
 * the URL the browser used and marks the session cookie Secure.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { trustProxySetting } from "../../cli/src/serve.ts";
import { PASSWORD, postForm, signInOverHttp, uiFixture, type UiFixture } from "../ui/helpers.ts";

const fixtures: UiFixture[] = [];
afterAll(async () => {
  for (const fx of fixtures) await fx.close();
});

const FORWARDED = { "x-forwarded-proto": "https", "x-forwarded-host": "kiln.example.com" };

async function triggerPage(fx: UiFixture, cookie: string): Promise<string> {
  const response = await fetch(`${fx.url}/ui/triggers/${fx.apiTrigger.id}`, { headers: { cookie, ...FORWARDED } });
  expect(response.status).toBe(200);
  return response.text();
}

describe("without trust_proxy (the default)", () => {
  test("forwarded headers are ignored: the page shows the Host addressed, the cookie is not Secure, a forged host does not pass the origin check", async () => {
    const fx = await uiFixture();
    fixtures.push(fx);
    const { cookie } = await signInOverHttp(fx.url, fx.users.editor);
    const page = await triggerPage(fx, cookie);
    const host = new URL(fx.url).host;
    expect(page).toContain(`http://${host}/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs/`);
    expect(page).not.toContain("kiln.example.com");

    const login = await postForm(fx.url, "/ui/login", { username: fx.users.editor, password: PASSWORD, next: "/ui" }, { origin: fx.url, ...FORWARDED });
    expect(login.status).toBe(303);
    expect(login.headers.get("set-cookie") ?? "").not.toMatch(/;\s*Secure/i);

    // a page on kiln.example.com posting here, claiming to be it through the header
    const forged = await postForm(fx.url, "/ui/login", { username: fx.users.editor, password: PASSWORD, next: "/ui" }, { origin: "https://kiln.example.com", ...FORWARDED });
    expect(forged.status).toBe(403);
  });
});

describe("with trust_proxy", () => {
  test("the forwarded scheme and host are used for the page's URLs, the cookie and the origin check", async () => {
    const fx = await uiFixture({ trustProxy: true });
    fixtures.push(fx);
    const { cookie } = await signInOverHttp(fx.url, fx.users.editor);
    const page = await triggerPage(fx, cookie);
    expect(page).toContain(`https://kiln.example.com/api/pipeline_schedules/${fx.apiTrigger.id}/pipeline_runs/`);

    const login = await postForm(fx.url, "/ui/login", { username: fx.users.editor, password: PASSWORD, next: "/ui" }, { origin: "https://kiln.example.com", ...FORWARDED });
    expect(login.status).toBe(303);
    expect(login.headers.get("set-cookie") ?? "").toMatch(/;\s*Secure/i);
  });
});

describe("KILN_TRUST_PROXY", () => {
  test("reads true/false and refuses anything else", () => {
    expect(trustProxySetting(undefined)).toBe(false);
    expect(trustProxySetting("")).toBe(false);
    expect(trustProxySetting("false")).toBe(false);
    expect(trustProxySetting("true")).toBe(true);
    expect(trustProxySetting("1")).toBe(true);
    expect(() => trustProxySetting("maybe")).toThrow(/KILN_TRUST_PROXY/);
  });
});
