// A TypeScript block between two Python ones: it gets load_orders' list and returns JSON that
// summarize (Python) receives as a list of dicts.
import { transformer, type BlockContext } from "@kiln/core";

interface Order {
  order_id: number;
  day: string;
  qty: number;
  unit_price: number;
}

export default transformer((orders: Order[], ctx: BlockContext) => {
  ctx.logger.info(`adding totals to ${orders.length} orders`);
  return orders.map((o) => ({ ...o, total: Math.round(o.qty * o.unit_price * 100) / 100 }));
});
