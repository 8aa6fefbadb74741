import { dataLoader } from "@kiln/core";

export interface Order {
  id: number;
  customer: string;
  amount: number;
}

/** The hour's orders (generated here, so the example needs no other service). */
export default dataLoader((ctx): Order[] => {
  const hour = ctx.executionDate.getUTCHours();
  const customers = ["ada", "grace", "linus", "margaret"];
  const orders = Array.from({ length: 12 }, (_, i) => ({
    id: i + 1,
    customer: customers[(i + hour) % customers.length] ?? "unknown",
    amount: ((i * 37 + hour) % 50) + 5,
  }));
  ctx.logger.info(`loaded ${orders.length} orders for ${ctx.executionDate.toISOString()}`);
  return orders;
});
