/**
 * The child process of benchmark (d): `bun bench/scheduler-child.ts <project root> <schedules>`
 * measures tick cost on that (new) project's database and prints a TickCost as JSON on stdout.
 * Started by tickCost() in scheduler.ts; the parent owns (and removes) the project folder.
 */
import { tickCostHere } from "./scheduler.ts";

delete process.env.KILN_DATABASE_URL;

const [root, count] = process.argv.slice(2);
if (!root || !count || !Number.isInteger(Number(count))) {
  process.stderr.write("usage: bun bench/scheduler-child.ts <project root> <schedules>\n");
  process.exit(2);
}
try {
  const result = await tickCostHere(root, Number(count));
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stderr.write(`(d) ${count} schedules failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
