/**
 * Triggers as code edited through the API: a PUT of a trigger defined in triggers.yaml is written
 * back to the file (comments kept) by the CLI's writer, and neither the co-located scheduler's
 * ticks nor ten further syncs revert it; Mage's pipeline bulk action writes back too; a token the
 * file does not set is never written into it; a host without files refuses with 409.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isKilnError } from "@kiln/core";
import { updateSchedule } from "@kiln/core/api";
import { type Project } from "@kiln/core/project";
import { syncTriggers } from "@kiln/scheduler";
import { triggerFileWriter } from "../../cli/src/trigger-files.ts";
import { SERVER_PROJECT, serverFixture, type ServerFixture } from "../helpers/server.ts";

const TRIGGERS = `# triggers for etl: reviewed by the data team
triggers:
  # the nightly load
  - name: nightly
    schedule_type: time
    schedule_interval: "@daily"   # midnight UTC
    start_time: 2026-01-01 00:00:00
    status: active
    variables:
      env: prod  # the target warehouse

  # called by the upstream system
  - name: hook
    schedule_type: api
    status: active
    tags: [upstream]

  - name: monthly
    schedule_type: time
    schedule_interval: "@monthly"
    start_time: 2027-01-01 00:00:00
    status: active
    last_enabled_at: 2026-11-01 00:00:00  # switched on by the ops team
`;

let fx: ServerFixture;
let current: Project;

async function row(name: string): Promise<Record<string, unknown>> {
  const rs = await fx.client.execute({ sql: "SELECT * FROM pipeline_schedules WHERE name = ?", args: [name] });
  return rs.rows[0] as Record<string, unknown>;
}

const file = () => readFileSync(join(fx.root, "pipelines/etl/triggers.yaml"), "utf8");

async function tenSyncs(): Promise<void> {
  for (let i = 0; i < 10; i++) await syncTriggers(fx.store, current);
}

beforeAll(async () => {
  let writer: ReturnType<typeof triggerFileWriter> | null = null;
  fx = await serverFixture(
    { ...SERVER_PROJECT, "pipelines/etl/triggers.yaml": TRIGGERS },
    {
      project: () => current,
      triggerFiles: { edit: (uuid, edit) => writer!.edit(uuid, edit) },
    },
  );
  current = fx.project;
  // as `kiln start` wires it: the reloaded project goes to the server and the scheduler
  writer = triggerFileWriter(fx.root, fx.root, (next) => {
    current = next;
    fx.scheduler.setProject(next);
  });
  await syncTriggers(fx.store, current);
});

afterAll(async () => {
  await fx?.close();
});

describe("API edits of triggers.yaml triggers", () => {
  test("a PUT is written back with the comments kept, and ten syncs keep it", async () => {
    // the file's last_enabled_at, not the time of the first sync
    expect(Number((await row("monthly")).last_enabled_at)).toBe(Date.UTC(2026, 10, 1));
    const { id } = await row("nightly");
    const put = await fx.call("PUT", `/api/pipeline_schedules/${id}`, {
      body: { pipeline_schedule: { status: "inactive", variables: { env: "staging" }, description: "paused for the migration", sla: 7200 } },
    });
    expect(put.status).toBe(200);
    const text = file();
    for (const comment of ["# triggers for etl: reviewed by the data team", "# the nightly load", "# midnight UTC", "# the target warehouse", "# called by the upstream system"]) {
      expect(text).toContain(comment);
    }
    expect(text).toContain("status: inactive");
    expect(text).toContain("env: staging");
    expect(text).toContain("description: paused for the migration");
    expect(text).toContain("sla: 7200");
    expect(current.pipelines.get("etl")!.triggers.find((t) => t.name === "nightly")!.status).toBe("inactive");
    await tenSyncs();
    const after = await row("nightly");
    expect(after.status).toBe("inactive");
    expect(JSON.parse(String(after.variables))).toEqual({ env: "staging" });
    expect(after.description).toBe("paused for the migration");
    expect(Number(after.sla)).toBe(7200);
    // the untouched trigger is as it was
    expect((await row("hook")).status).toBe("active");
  });

  test("Mage's bulk action PUT /api/pipelines/:uuid writes every trigger's status back", async () => {
    const off = await fx.call("PUT", "/api/pipelines/etl", { body: { pipeline: { status: "inactive" } } });
    expect(off.status).toBe(200);
    expect(file().match(/status: inactive/g)?.length).toBe(3);
    expect(file()).toMatch(/last_enabled_at: 2026-11-01 00:00:00 +# switched on by the ops team/);
    await tenSyncs();
    expect((await row("nightly")).status).toBe("inactive");
    expect((await row("hook")).status).toBe("inactive");
    const on = await fx.call("PUT", "/api/pipelines/etl", { body: { pipeline: { status: "active" } } });
    expect(on.status).toBe(200);
    expect(file()).not.toContain("status: inactive");
    expect(file()).toContain("# the nightly load");
    await tenSyncs();
    expect((await row("nightly")).status).toBe("active");
    expect((await row("hook")).status).toBe("active");
  });

  test("last_enabled_at in triggers.yaml is the row's; switching the trigger on through the API moves it in the file too", async () => {
    const { id } = await row("monthly");
    const before = Date.now();
    expect((await fx.call("PUT", `/api/pipeline_schedules/${id}`, { body: { pipeline_schedule: { status: "active" } } })).status).toBe(200);
    const written = current.pipelines.get("etl")!.triggers.find((t) => t.name === "monthly")!.lastEnabledAt!;
    expect(written).toBeGreaterThanOrEqual(before - 1000);
    expect(file()).toContain("# switched on by the ops team");
    expect(file()).not.toContain("2026-11-01");
    await tenSyncs();
    const after = await row("monthly");
    expect(after.status).toBe("active");
    expect(Number(after.last_enabled_at)).toBe(written);
  });

  test("a rotated token stays in the database and is never written into the file", async () => {
    const { id } = await row("hook");
    const before = file();
    const rotated = await fx.call("PUT", `/api/pipeline_schedules/${id}`, { body: { pipeline_schedule: { rotate_token: true } } });
    expect(rotated.status).toBe(200);
    const token = (rotated.json.pipeline_schedule as { token: string }).token;
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    expect(file()).toBe(before);
    expect(file()).not.toContain("token");
    await tenSyncs();
    expect(await fx.store.revealTriggerToken(Number(id))).toBe(token);
  });

  test("tags: from the file, set through the API (written back), and filtered with tag[]", async () => {
    expect(JSON.parse(String((await row("hook")).tags))).toEqual(["upstream"]);
    const { id } = await row("nightly");
    const put = await fx.call("PUT", `/api/pipeline_schedules/${id}`, { body: { pipeline_schedule: { tags: ["nightly", "finance"] } } });
    expect(put.status).toBe(200);
    expect((put.json.pipeline_schedule as { tags: string[] }).tags).toEqual(["nightly", "finance"]);
    expect(current.pipelines.get("etl")!.triggers.find((t) => t.name === "nightly")!.tags).toEqual(["nightly", "finance"]);
    await tenSyncs();
    expect(JSON.parse(String((await row("nightly")).tags))).toEqual(["nightly", "finance"]);
    const names = async (query: string) => {
      const res = await fx.call("GET", `/api/pipeline_schedules?${query}`);
      expect(res.status).toBe(200);
      return (res.json.pipeline_schedules as Array<{ name: string }>).map((s) => s.name).sort();
    };
    expect(await names("tag[]=finance")).toEqual(["nightly"]);
    expect(await names("tag[]=finance&tag[]=upstream")).toEqual(["hook", "nightly"]);
    expect(await names("tag[]=upstream,nightly")).toEqual(["hook", "nightly"]);
    expect(await names("tag[]=none")).toEqual([]);
    expect(await names("")).toEqual(["hook", "monthly", "nightly"]);
    const bad = await fx.call("PUT", `/api/pipeline_schedules/${id}`, { body: { pipeline_schedule: { tags: "finance" } } });
    expect(bad.status).toBe(400);
  });

  test("a bad value is refused with 4xx and the file is left as it was", async () => {
    const { id } = await row("nightly");
    const before = file();
    const bad = await fx.call("PUT", `/api/pipeline_schedules/${id}`, { body: { pipeline_schedule: { schedule_interval: "every tuesday" } } });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
    expect(file()).toBe(before);
  });

  test("a host without files (a Worker) refuses such an edit with a conflict naming the file", async () => {
    const { id } = await row("nightly");
    const error = await updateSchedule(fx.store, Number(id), { status: "inactive" }, { project: current, files: null }).catch((e: unknown) => e);
    expect(isKilnError(error, "conflict")).toBe(true);
    expect((error as Error).message).toContain("pipelines/etl/triggers.yaml");
    expect((await row("nightly")).status).toBe("active");
  });
});

describe("a server without a trigger-file writer (as on a Worker)", () => {
  test("a PUT of a triggers.yaml trigger answers 409 naming the file; an API-made trigger is still edited", async () => {
    const bare = await serverFixture({ ...SERVER_PROJECT, "pipelines/etl/triggers.yaml": TRIGGERS });
    try {
      await syncTriggers(bare.store, bare.project);
      const rs = await bare.client.execute("SELECT id FROM pipeline_schedules WHERE name = 'nightly'");
      const id = Number(rs.rows[0]!.id);
      const refused = await bare.call("PUT", `/api/pipeline_schedules/${id}`, { body: { pipeline_schedule: { status: "inactive" } } });
      expect(refused.status).toBe(409);
      expect(JSON.stringify(refused.json)).toContain("pipelines/etl/triggers.yaml");
      expect(readFileSync(join(bare.root, "pipelines/etl/triggers.yaml"), "utf8")).toBe(TRIGGERS);
      const made0 = await bare.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "first", schedule_type: "api", status: "active" } } });
      expect(made0.status).toBe(201);
      const bulk = await bare.call("PUT", "/api/pipelines/etl", { body: { pipeline: { status: "inactive" } } });
      expect(bulk.status).toBe(409);
      expect(JSON.stringify(bulk.json)).toContain("nightly");
      // nothing was switched, not even the API-made trigger
      const first = await bare.client.execute("SELECT status FROM pipeline_schedules WHERE name = 'first'");
      expect(first.rows[0]!.status).toBe("active");
      const made = await bare.call("POST", "/api/pipelines/etl/pipeline_schedules", { body: { pipeline_schedule: { name: "adhoc", schedule_type: "api", tags: ["manual"] } } });
      expect(made.status).toBe(201);
      const madeId = (made.json.pipeline_schedule as { id: number }).id;
      const edited = await bare.call("PUT", `/api/pipeline_schedules/${madeId}`, { body: { pipeline_schedule: { status: "active" } } });
      expect(edited.status).toBe(200);
      expect((edited.json.pipeline_schedule as { tags: string[] }).tags).toEqual(["manual"]);
    } finally {
      await bare.close();
    }
  });
});
