/**
 * The batch/v1 Job kiln creates for a block run, and the parts of Job and Pod objects it reads
 * back. Kubernetes retries nothing (backoffLimit 0): kiln's retry_config decides retries, so one
 * failure is one failed attempt.
 */
import { blockRunEnv, blockRunLabels, runBlockArgs, type BlockJob } from "@kiln/core";
import { isLabelKey, type KubernetesConfig } from "./config.ts";

/** The name of the one container in a block run's pod. */
export const CONTAINER_NAME = "block";
/** Set on the Job by kiln's cancel, before the delete. */
export const CANCELLED_ANNOTATION = "kiln.dev/cancelled";
/** Set on the Job when kiln ends it for a pod that cannot start; its value is the block run's error. */
export const FAILURE_ANNOTATION = "kiln.dev/failure";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef: { name: string; key: string } };
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  envFrom?: { secretRef: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  imagePullPolicy?: string;
  terminationMessagePolicy?: string;
}

export interface PodSpec {
  restartPolicy: string;
  containers: Container[];
  serviceAccountName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: object[];
  imagePullSecrets?: { name: string }[];
}

export interface JobManifest {
  apiVersion: "batch/v1";
  kind: "Job";
  metadata: ObjectMeta;
  spec: {
    backoffLimit: number;
    ttlSecondsAfterFinished: number;
    activeDeadlineSeconds?: number;
    template: { metadata: ObjectMeta; spec: PodSpec };
  };
}

/** A Job as the API server returns it (the fields kiln reads). */
export interface KubeJob {
  metadata: ObjectMeta;
  spec?: { activeDeadlineSeconds?: number };
  status?: { active?: number; succeeded?: number; failed?: number; startTime?: string; conditions?: Condition[] };
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: { exitCode: number; signal?: number; reason?: string; message?: string };
}

/** A Pod as the API server returns it (the fields kiln reads). */
export interface KubePod {
  metadata: ObjectMeta;
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: Condition[];
    containerStatuses?: { name: string; state?: ContainerState }[];
  };
}

/** Lower-case letters, digits and "-", as Kubernetes names must be (RFC 1123 labels). */
function dnsPart(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
}

/**
 * The Job's generateName: "kiln-<pipeline>-<block>-<block run id>-<attempt>-", cut so that the
 * name the server makes (5 more characters) fits the 63 characters of the job-name label
 * its pods carry.
 */
export function jobNamePrefix(job: BlockJob): string {
  const tail = `-${job.blockRunId}-${job.attempt}-`;
  const head = dnsPart(`kiln-${job.pipelineUuid}-${job.blockUuid}`).slice(0, 58 - tail.length).replace(/-+$/, "");
  return `${head}${tail}`;
}

/** A label value from any text: invalid characters become "_", cut to 63, alphanumeric at both ends. */
export function labelValue(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]/g, "_")
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
}

/** A label key from kiln's label names: "kiln.pipeline-uuid" becomes "kiln.dev/pipeline-uuid". */
export function labelKey(name: string): string {
  const key = name.startsWith("kiln.") ? `kiln.dev/${name.slice("kiln.".length)}` : name;
  if (isLabelKey(key)) return key;
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash + 1) : "";
  return prefix + (labelValue(key.slice(slash + 1)) || "label");
}

/** The labels of a block run's Job and pod: blockRunLabels made valid, the block, and who manages them. */
export function jobLabels(job: BlockJob): Record<string, string> {
  const labels: Record<string, string> = { [MANAGED_BY_LABEL]: "kiln" };
  for (const [name, value] of Object.entries(blockRunLabels(job))) labels[labelKey(name)] = labelValue(value);
  labels["kiln.dev/block-uuid"] = labelValue(job.blockUuid);
  return labels;
}

/** The exact uuids, which labels may have had to change. */
function jobAnnotations(job: BlockJob): Record<string, string> {
  return { "kiln.dev/pipeline-uuid": job.pipelineUuid, "kiln.dev/block-uuid": job.blockUuid };
}

/** The container's environment: the project's block env, then the block run's, then the config's, then Secret keys; a later name wins. */
function containerEnv(job: BlockJob, config: KubernetesConfig, blockEnv: Record<string, string>): EnvVar[] {
  const byName = new Map<string, EnvVar>();
  for (const [name, value] of Object.entries({ ...blockEnv, ...blockRunEnv(job), ...config.env })) byName.set(name, { name, value });
  for (const { name, secret, key } of config.secretKeyEnv) {
    byName.delete(name);
    byName.set(name, { name, valueFrom: { secretKeyRef: { name: secret, key } } });
  }
  return [...byName.values()];
}

/** The Job running `kiln run-block` for one block run. */
export function buildJobManifest(job: BlockJob, config: KubernetesConfig, namespace: string, blockEnv: Record<string, string>): JobManifest {
  const labels = jobLabels(job);
  const annotations = jobAnnotations(job);
  const container: Container = {
    name: CONTAINER_NAME,
    image: config.image,
    command: [...config.command, ...runBlockArgs(job, config.projectRoot ?? job.projectRoot)],
    env: containerEnv(job, config, blockEnv),
    // a failed container's last log lines become its termination message: the block's error
    // can be read from the pod's status even when its log cannot
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  if (config.envFromSecrets.length > 0) container.envFrom = config.envFromSecrets.map((name) => ({ secretRef: { name } }));
  if (config.resources) container.resources = config.resources;
  if (config.imagePullPolicy) container.imagePullPolicy = config.imagePullPolicy;

  const pod: PodSpec = { restartPolicy: "Never", containers: [container] };
  if (config.serviceAccount) pod.serviceAccountName = config.serviceAccount;
  if (Object.keys(config.nodeSelector).length > 0) pod.nodeSelector = config.nodeSelector;
  if (config.tolerations.length > 0) pod.tolerations = config.tolerations;
  if (config.imagePullSecrets.length > 0) pod.imagePullSecrets = config.imagePullSecrets.map((name) => ({ name }));

  const manifest: JobManifest = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { generateName: jobNamePrefix(job), namespace, labels, annotations },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: config.ttlSecondsAfterFinished,
      template: { metadata: { labels, annotations }, spec: pod },
    },
  };
  if (job.timeout !== null && job.timeout > 0) manifest.spec.activeDeadlineSeconds = Math.ceil(job.timeout);
  return manifest;
}
