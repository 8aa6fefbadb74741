/** What the scheduler notifies about (run failure, opt-in success, SLA, drift), per notification_config. */
import { notify, type PipelineRun, type PipelineRunStatus, type Project, type Store, type WriteBatch } from "@kiln/core";

/** The project's notification_config, or null when it sets none (the loader has checked it). */
export function notificationConfigOf(project: Project): notify.NotificationConfig | null {
  const raw = project.settings.notificationConfig;
  if (!raw || Object.keys(raw).length === 0) return null;
  return notify.parseNotificationConfig(raw);
}

/** An engine hook: queues the notification a run's end causes in the batch that ends it. */
export function notifyRunEnd(store: Store, project: () => Project) {
  return (run: PipelineRun, status: PipelineRunStatus, error: string | null, batch: WriteBatch): void => {
    const current = project();
    const config = notificationConfigOf(current);
    if (!config) return;
    const pipeline = { uuid: run.pipelineUuid, name: current.pipelines.get(run.pipelineUuid)?.name };
    const event = status === "failed" ? notify.runFailed(run, pipeline, error) : status === "completed" ? notify.runSucceeded(run, pipeline) : null;
    if (event) void notify.enqueueNotifications(batch, store, config, event);
  };
}
