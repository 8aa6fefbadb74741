import { dataExporter, type BlockContext } from "@kiln/core";

/** Formats the report; its output (stored under .variables/) is the report itself. */
export default dataExporter((rows: Array<{ customer: string; total: number }>, ctx: BlockContext) => {
  const currency = String(ctx.variables.currency ?? "EUR");
  const lines = rows.map((r) => `${r.customer}: ${r.total} ${currency}`);
  ctx.logger.info(`report for ${ctx.executionPartition}`, { customers: rows.length });
  return { generated_for: ctx.executionDate.toISOString(), lines };
});
