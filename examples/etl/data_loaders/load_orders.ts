import { dataLoader } from "@kiln/core";

export interface Order {
  id: number;
  customer: string;
  amount: number;
}

/** Loads the day's orders (generated here, so the example needs no network or database). */
export default dataLoader((ctx): Order[] => {
  const day = ctx.executionDate.toISOString().slice(0, 10);
  const customers = ["ada", "grace", "linus", "margaret"];
  const orders = Array.from({ length: 12 }, (_, i) => ({
    id: i + 1,
    customer: customers[i % customers.length] ?? "unknown",
    amount: ((i * 37) % 50) + 5,
  }));
  ctx.logger.info(`loaded ${orders.length} orders for ${day}`);
  return orders;
});
