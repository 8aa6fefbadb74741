export * from "./types.ts";
export { pipelineSchema, projectSettingsSchema, triggersSchema, type BlockSpec, type PipelineSpec } from "./schema.ts";
export * from "./dag.ts";
export * from "./load.ts";
export * from "./persist-trigger.ts";
export * from "./remote-check.ts";
export * from "./mage.ts";
