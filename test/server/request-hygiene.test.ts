/**
 * What a request leaves behind and what its refusal reveals: a 500's log line names the route by
 * its pattern (an API trigger's token in the path never reaches the log), and an API key is
 * refused with the same comparison work whether its id exists or not.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSchedule } from "@kiln/core/api";
import { createApiKey, verifyApiKey, type HashComparison } from "@kiln/core/auth";
import { generateSecretKey, importSecretKey } from "@kiln/core/runtime";
import { Store } from "@kiln/core/store";
import { createApp, type ServerDeps } from "@kiln/server";
import { projectFixture, type Fixture } from "../helpers/fixtures.ts";
import { SERVER_PROJECT } from "../helpers/server.ts";

let fx: Fixture;

beforeAll(async () => {
  fx = await projectFixture(SERVER_PROJECT);
});

afterAll(() => fx?.cleanup());

describe("log lines name routes by their pattern", () => {
  test("a 500 on the API trigger logs the pattern, not the token", async () => {
    const schedule = await createSchedule(fx.store, fx.project, { name: "api", pipelineUuid: "etl", scheduleType: "api", status: "active" });
    const token = (await fx.store.revealTriggerToken(schedule.id)) as string;
    // a store that fails when the run is created: a kiln bug as far as the route can tell
    const failing = new Proxy(fx.store, {
      get(target, property, receiver) {
        if (property === "createPipelineRun") return () => Promise.reject(new Error("disk on fire"));
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as Store;
    const lines: string[] = [];
    const deps: ServerDeps = {
      store: failing,
      project: () => fx.project,
      clock: fx.store.clock,
      version: "test",
      authEnabled: true,
      secretKey: await importSecretKey(generateSecretKey()),
      bodyLimitBytes: 1024 * 1024,
    };
    const app = createApp(deps, { log: (line) => lines.push(line) });
    const response = await app.fetch(
      new Request(`http://kiln.test/api/pipeline_schedules/${schedule.id}/pipeline_runs/${token}?note=${token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      }),
    );
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).not.toContain(token);
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("POST /api/pipeline_schedules/:id/pipeline_runs/:token");
    expect(lines[0]).toContain("disk on fire");
    for (const line of lines) expect(line).not.toContain(token);
  });
});

describe("API key refusals do the same work whether the id exists or not", () => {
  test("one full-length hash comparison for an unknown id, a known id with a wrong secret, and a revoked key", async () => {
    const { key, record } = await createApiKey(fx.client, { name: "timing", role: "viewer" }, Date.now());
    // the secret is base64url, which may itself hold "_"
    const secret = key.slice(`kiln_${record.id}_`.length);
    const wrongSecret = `kiln_${record.id}_${secret.replace(/^./, (ch) => (ch === "A" ? "B" : "A"))}`;
    const unknownId = `kiln_${record.id + 1000}_${secret}`;
    const calls: Array<{ presented: number; stored: number }> = [];
    const watch: HashComparison = (presented, stored) => {
      calls.push({ presented: presented.length, stored: stored.length });
      return presented === stored;
    };
    expect(await verifyApiKey(fx.client, unknownId, undefined, watch)).toBeNull();
    expect(await verifyApiKey(fx.client, wrongSecret, undefined, watch)).toBeNull();
    expect(calls).toEqual([
      { presented: 64, stored: 64 },
      { presented: 64, stored: 64 },
    ]);
    // the live key still verifies through the same comparison
    expect((await verifyApiKey(fx.client, key, undefined, watch))?.name).toBe("timing");
    expect(calls.length).toBe(3);
  });
});
