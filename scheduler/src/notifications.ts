/** What the scheduler notifies about (run failure, opt-in success, SLA, drift), per notification_config. */
import { type PipelineRun, type PipelineRunStatus } from "@kiln/core";
import * as notify from "@kiln/core/notify";
import { type Project } from "@kiln/core/project";
import { type Store, type WriteBatch } from "@kiln/core/store";

/**
 * The notification_config for a pipeline's events: kiln.yaml's, with the pipeline's keys
 * replacing it; null when neither sets any (the loader has checked both).
 */
export function notificationConfigOf(project: Project, pipelineUuid?: string): notify.NotificationConfig | null {
  // parsed once per loaded project: run ends and ticks ask again and again
  let byPipeline = parsed.get(project);
  if (!byPipeline) parsed.set(project, (byPipeline = new Map()));
  const key = pipelineUuid ?? "";
  if (!byPipeline.has(key)) byPipeline.set(key, parseConfigOf(project, pipelineUuid));
  return byPipeline.get(key) ?? null;
}

const parsed = new WeakMap<Project, Map<string, notify.NotificationConfig | null>>();

function parseConfigOf(project: Project, pipelineUuid?: string): notify.NotificationConfig | null {
  const projectRaw = project.settings.notificationConfig;
  const pipelineRaw = pipelineUuid ? project.pipelines.get(pipelineUuid)?.notificationConfig : undefined;
  const empty = (raw: unknown) => !raw || Object.keys(raw as object).length === 0;
  if (empty(projectRaw) && empty(pipelineRaw)) return null;
  return notify.mergeNotificationConfig(notify.parseNotificationConfig(projectRaw), empty(pipelineRaw) ? null : notify.parseNotificationConfig(pipelineRaw));
}

/** An engine hook: queues the notification a run's end causes in the batch that ends it. */
export function notifyRunEnd(store: Store, project: () => Project) {
  return (run: PipelineRun, status: PipelineRunStatus, error: string | null, batch: WriteBatch): void => {
    const current = project();
    const config = notificationConfigOf(current, run.pipelineUuid);
    if (!config) return;
    const pipeline = { uuid: run.pipelineUuid, name: current.pipelines.get(run.pipelineUuid)?.name };
    const event = status === "failed" ? notify.runFailed(run, pipeline, error) : status === "completed" ? notify.runSucceeded(run, pipeline) : null;
    if (event) void notify.enqueueNotifications(batch, store, config, event);
  };
}
