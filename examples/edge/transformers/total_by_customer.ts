import { transformer, type BlockContext } from "@kiln/core";
import type { Order } from "../data_loaders/load_orders.ts";

/** Sums order amounts per customer, keeping customers at or above the `min_total` variable. */
export default transformer((orders: Order[], ctx: BlockContext) => {
  const minTotal = Number(ctx.variables.min_total ?? 0);
  const totals = new Map<string, number>();
  for (const order of orders) totals.set(order.customer, (totals.get(order.customer) ?? 0) + order.amount);
  const rows = [...totals].filter(([, total]) => total >= minTotal).map(([customer, total]) => ({ customer, total, currency: String(ctx.variables.currency ?? "EUR") }));
  ctx.logger.info(`${rows.length} customers at or above ${minTotal}`);
  return rows;
});
