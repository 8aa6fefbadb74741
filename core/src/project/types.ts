/**
 * A user's project as loaded from disk (or from a bundled module map on Workers): kiln.yaml,
 * pipelines/<uuid>/metadata.yaml and triggers.yaml, and the block modules they name.
 */
import type { JsonObject, PipelineSchedule, ScheduleSettings } from "../domain.ts";

export const BLOCK_TYPES = ["data_loader", "transformer", "data_exporter", "sensor", "custom"] as const;
export type BlockType = (typeof BLOCK_TYPES)[number];

/** The folder that holds a block type's modules, as in Mage (custom/ is singular). */
export const BLOCK_TYPE_FOLDERS: Record<BlockType, string> = {
  data_loader: "data_loaders",
  transformer: "transformers",
  data_exporter: "data_exporters",
  sensor: "sensors",
  custom: "custom",
};

/** Mage's add-on blocks: listed under `callbacks:` and `conditionals:`, attached to the blocks they name upstream. */
export type AddonKind = "callback" | "conditional";

/** The folder that holds each add-on kind's modules, as in Mage. */
export const ADDON_FOLDERS: Record<AddonKind, string> = { callback: "callbacks", conditional: "conditionals" };

/**
 * A callback or conditional block. It gets no block run of its own: a conditional is evaluated
 * before each block it is attached to (false, or an error, makes that block condition_failed);
 * a callback runs after it (on_success / on_failure). See engine/addons.ts.
 */
export interface AddonBlock {
  uuid: string;
  name: string;
  kind: AddonKind;
  /** The blocks it is attached to (its `upstream_blocks` in Mage's metadata.yaml). */
  parents: string[];
  /** Project-relative path of its module, e.g. `conditionals/is_weekday.py`. */
  modulePath: string;
}

/** Mage's retry_config; `maxDelay` caps each wait (Mage caps their sum, a known complaint). */
export interface RetryConfig {
  retries: number;
  /** Seconds before the first retry. */
  delay: number;
  /** Seconds; no single wait is longer. */
  maxDelay: number;
  exponentialBackoff: boolean;
}

export const DEFAULT_RETRY_CONFIG: RetryConfig = { retries: 0, delay: 5, maxDelay: 60, exponentialBackoff: true };

export interface ConcurrencyConfig {
  /** Queued + running block runs per pipeline run (bounds dynamic fan-out too). */
  blockRunLimit?: number;
  pipelineRunLimit?: number;
  pipelineRunLimitAllTriggers?: number;
  onPipelineRunLimitReached?: "wait" | "skip";
  /** Block runs executing at once per executor type, across all runs of this process (kiln.yaml). */
  executorLimits?: Record<string, number>;
}

export interface BlockConfiguration {
  /** The block returns a list; each downstream block runs once per item. */
  dynamic?: boolean;
  /** On a block downstream of a dynamic block: gather its per-item outputs into one list. */
  reduceOutput?: boolean;
  /** Sensors: seconds between polls (default 60, as in Mage). */
  pollInterval?: number;
}

export interface BlockConfig {
  uuid: string;
  name: string;
  type: BlockType;
  upstreamBlocks: string[];
  /** Derived: the blocks that list this one upstream, in metadata order. */
  downstreamBlocks: string[];
  executorType: string | null;
  executorConfig: JsonObject;
  retryConfig: Partial<RetryConfig>;
  /** Seconds a block run may run before it is failed; null means no limit. */
  timeout: number | null;
  configuration: BlockConfiguration;
  /** Project-relative path of the block's module, e.g. `data_loaders/load_orders.ts`. */
  modulePath: string;
}

export interface Pipeline {
  uuid: string;
  name: string;
  description: string | null;
  /** Blocks in metadata order, which is also a valid topological order once loaded. */
  blocks: BlockConfig[];
  blocksByUuid: ReadonlyMap<string, BlockConfig>;
  executorType: string | null;
  executorConfig: JsonObject;
  retryConfig: Partial<RetryConfig>;
  concurrencyConfig: ConcurrencyConfig;
  variables: JsonObject;
  /** Run settings used when a run has no trigger (e.g. `kiln run`); a trigger's own settings win. */
  settings: ScheduleSettings;
  /** Notification targets for this pipeline's runs; each key set here replaces kiln.yaml's. */
  notificationConfig: JsonObject;
  triggers: TriggerConfig[];
  /** Mage's pipeline `tags` (shown as the runs' `pipeline_tags`); absent means none. */
  tags?: string[];
  /** Callback blocks (Mage's `callbacks:`); absent means none. */
  callbacks?: AddonBlock[];
  /** Conditional blocks (Mage's `conditionals:`); absent means none. */
  conditionals?: AddonBlock[];
}

/** One entry of triggers.yaml, in Mage's format: a trigger's stored fields, plus what only the file has. */
export interface TriggerConfig
  extends Pick<PipelineSchedule, "name" | "scheduleType" | "scheduleInterval" | "startTime" | "timezone" | "status" | "variables" | "sla" | "description" | "lastEnabledAt"> {
  settings: ScheduleSettings & JsonObject;
  token: string | null;
  /** Event triggers: `event_pattern`, or Mage's `event_matchers` (any of their patterns). */
  eventPattern?: JsonObject;
  envs: string[];
  /** Mage's trigger tags (the API filters on them with `tag[]`). */
  tags: string[];
}

export interface ProjectSettings {
  /** Database URL from kiln.yaml (`database_url`); KILN_DATABASE_URL wins over it. */
  databaseUrl: string | null;
  executorType: string;
  executorConfig: JsonObject;
  retryConfig: Partial<RetryConfig>;
  concurrencyConfig: ConcurrencyConfig;
  variables: JsonObject;
  /** npm packages that default-export an executor factory. */
  plugins: string[];
  notificationConfig: JsonObject;
  /** Project-wide executor_config per executor type (kiln.yaml `executors`), under pipeline and block configs. */
  executors: Record<string, JsonObject>;
  /** Where block outputs are stored (kiln.yaml `output_store`). */
  outputStore: OutputStoreSettings;
  /** The interpreter for Python blocks (kiln.yaml `python`); KILN_PYTHON wins over it; null: python3 on PATH. */
  python?: string | null;
  /** Mage's project_uuid, when the project is a Mage project (root metadata.yaml). */
  projectUuid?: string | null;
  /** The file the settings came from: kiln.yaml, or Mage's root metadata.yaml. */
  file?: string;
}

/** Outputs larger than this are refused by the database output store unless `max_bytes` says otherwise. */
export const DEFAULT_DATABASE_OUTPUT_BYTES = 1024 * 1024;

/**
 * The largest output of an in-process block run kept as a database row (written with the block
 * run's completion) rather than a file, unless kiln.yaml's `output_store.inline_max_bytes` says otherwise.
 */
export const DEFAULT_INLINE_OUTPUT_BYTES = 64 * 1024;

/** The most `output_store.inline_max_bytes` may be: larger outputs belong in files (or `type: database` with its max_bytes). */
export const MAX_INLINE_OUTPUT_BYTES = 1024 * 1024;

/** kiln.yaml's `output_store`, parsed. */
export type OutputStoreSettings =
  | {
      type: "local";
      /**
       * The folder outputs are written under (kiln.yaml `output_store.path`, or a Mage project's
       * `variables_dir`), absolute once loaded; absent: the project folder.
       */
      path?: string;
      /**
       * The largest output (bytes of its UTF-8 JSON) of an in-process block run kept as a row of
       * the database, committed with the block run's completion (kiln.yaml
       * `output_store.inline_max_bytes`); 0: every output is a file. Absent: DEFAULT_INLINE_OUTPUT_BYTES.
       */
      inlineMaxBytes?: number;
    }
  | { type: "database"; maxBytes: number }
  | {
      type: "s3";
      bucket: string;
      /** Key prefix; keys are `<prefix><outputPath>`. */
      prefix: string;
      /** An S3-compatible endpoint (MinIO, R2, ...); null means AWS's endpoint for the region. */
      endpoint: string | null;
      region: string;
      /** `<endpoint>/<bucket>/<key>` rather than `<bucket>.<endpoint>/<key>`; the default with a custom endpoint. */
      forcePathStyle: boolean;
    };

export interface Project {
  /** Absolute path (or a bundle name on Workers). */
  root: string;
  settings: ProjectSettings;
  pipelines: ReadonlyMap<string, Pipeline>;
  /**
   * Settings found in the project's files that kiln does not act on, one line per file naming
   * the keys (Mage's spark_config, widgets, ...). The CLI prints them at load.
   */
  warnings?: string[];
}

/**
 * How core reads a project without touching a file system API itself: the node package reads a
 * folder; the Worker build supplies a module map.
 */
export interface ProjectSource {
  readonly root: string;
  /** The text of a project-relative file, or null if it does not exist. */
  readText(path: string): Promise<string | null>;
  /** Names of the entries of a project-relative folder (empty if it does not exist). */
  list(path: string): Promise<string[]>;
  /** Imports a project-relative module. */
  importModule(path: string): Promise<unknown>;
}
