/**
 * The rules and derivations of one pipeline's block graph: unique uuids, known upstreams, no
 * cycle, kiln's limits on dynamic blocks, downstream lists, a stable topological order, and
 * which upstream a block fans out through.
 *
 * Fan-out vocabulary: a dynamic block returns a list and each downstream block runs once per
 * item. A block downstream of a dynamic block is a "fan-out child"; unless it sets
 * reduce_output, its own downstream blocks run per item too, so it is itself a "fan-out
 * source", like the dynamic block.
 */
import type { BlockConfig, Pipeline } from "./types.ts";

/** The parts of a block the graph rules look at. */
export type DagBlock = Pick<BlockConfig, "uuid" | "upstreamBlocks" | "configuration">;

/** A broken rule: the metadata.yaml field at fault (snake_case, indexed), what was expected and found. */
export interface DagProblem {
  field: string;
  expected: string;
  got: string;
}

/** The first rule the blocks (in metadata order) break, or null if the graph is valid. */
export function checkDag(blocks: readonly DagBlock[]): DagProblem | null {
  return duplicateUuid(blocks) ?? badUpstream(blocks) ?? cycle(blocks) ?? fanOutProblem(blocks);
}

function duplicateUuid(blocks: readonly DagBlock[]): DagProblem | null {
  const firstIndex = new Map<string, number>();
  for (const [i, block] of blocks.entries()) {
    const first = firstIndex.get(block.uuid);
    if (first !== undefined) {
      return {
        field: `blocks[${i}].uuid`,
        expected: "unique block uuids",
        got: `"${block.uuid}" at both blocks[${first}] and blocks[${i}]`,
      };
    }
    firstIndex.set(block.uuid, i);
  }
  return null;
}

function badUpstream(blocks: readonly DagBlock[]): DagProblem | null {
  const uuids = new Set(blocks.map((b) => b.uuid));
  for (const [i, block] of blocks.entries()) {
    const seen = new Set<string>();
    for (const [j, upstream] of block.upstreamBlocks.entries()) {
      const field = `blocks[${i}].upstream_blocks[${j}]`;
      if (!uuids.has(upstream)) {
        return {
          field,
          expected: "the uuid of a block in this pipeline",
          got: `"${upstream}" (block "${block.uuid}" names an unknown upstream block)`,
        };
      }
      if (seen.has(upstream)) {
        return { field, expected: "each upstream block listed once", got: `"${upstream}" again` };
      }
      seen.add(upstream);
    }
  }
  return null;
}

/**
 * Names a cycle if there is one. Kahn's algorithm leaves exactly the blocks on or downstream of
 * a cycle, each with an upstream among them, so walking upstream from any of them must repeat.
 */
function cycle(blocks: readonly DagBlock[]): DagProblem | null {
  const sorted = new Set(topologicalOrder(blocks).map((b) => b.uuid));
  if (sorted.size === blocks.length) return null;
  const index = new Map(blocks.map((b, i) => [b.uuid, i]));
  const left = new Map(blocks.filter((b) => !sorted.has(b.uuid)).map((b) => [b.uuid, b]));

  const walk: string[] = [];
  const position = new Map<string, number>();
  let current = left.keys().next().value as string;
  while (!position.has(current)) {
    position.set(current, walk.length);
    walk.push(current);
    const block = left.get(current) as DagBlock;
    current = block.upstreamBlocks.find((u) => left.has(u)) as string;
  }
  // The walk goes upstream; reverse it so arrows point the way data flows, then start the
  // cycle at its earliest block in metadata order so the message is stable.
  const loop = walk.slice(position.get(current)).reverse();
  const order = (uuid: string) => index.get(uuid) ?? 0;
  const first = loop.reduce((earliest, uuid) => (order(uuid) < order(earliest) ? uuid : earliest));
  const start = loop.indexOf(first);
  const ordered = [...loop.slice(start), ...loop.slice(0, start)];
  return {
    field: `blocks[${index.get(first)}].upstream_blocks`,
    expected: "blocks without a cycle",
    got: `the cycle ${[...ordered, first].join(" -> ")}`,
  };
}

function fanOutProblem(blocks: readonly DagBlock[]): DagProblem | null {
  const sources = fanOutUpstreams(topologicalOrder(blocks));
  for (const [i, block] of blocks.entries()) {
    const from = sources.get(block.uuid) ?? [];
    if (from.length > 1) {
      return {
        field: `blocks[${i}].upstream_blocks`,
        expected:
          "at most one upstream block that fans out (a dynamic block, or a block downstream of one without reduce_output)",
        got: `${from.map((u) => `"${u}"`).join(" and ")} (block "${block.uuid}" would join two fan-outs, which kiln does not support yet)`,
      };
    }
    if (block.configuration.dynamic && from.length > 0) {
      return {
        field: `blocks[${i}].configuration.dynamic`,
        expected: "a dynamic block that does not itself run once per item of another dynamic block",
        got: `block "${block.uuid}" fans out from "${from[0]}" (nested fan-out is not supported yet)`,
      };
    }
    if (block.configuration.reduceOutput && from.length === 0) {
      return {
        field: `blocks[${i}].configuration.reduce_output`,
        expected: "reduce_output only on a block downstream of a dynamic block",
        got: `block "${block.uuid}", which does not fan out from any dynamic block`,
      };
    }
  }
  return null;
}

/**
 * For each block, its upstream blocks that fan out, in upstream_blocks order. The blocks must
 * be in topological order, so every upstream is decided before the blocks that read it.
 */
function fanOutUpstreams(sortedBlocks: readonly DagBlock[]): Map<string, string[]> {
  const isSource = new Map<string, boolean>();
  const result = new Map<string, string[]>();
  for (const block of sortedBlocks) {
    const from = block.upstreamBlocks.filter((u) => isSource.get(u) === true);
    result.set(block.uuid, from);
    const { dynamic, reduceOutput } = block.configuration;
    isSource.set(block.uuid, dynamic === true || (from.length > 0 && reduceOutput !== true));
  }
  return result;
}

/** For each block uuid, the uuids of the blocks that list it upstream, in metadata order. */
export function downstreamBlocksOf(blocks: readonly DagBlock[]): Map<string, string[]> {
  const downstream = new Map<string, string[]>(blocks.map((b) => [b.uuid, []]));
  for (const block of blocks) {
    for (const upstream of block.upstreamBlocks) downstream.get(upstream)?.push(block.uuid);
  }
  return downstream;
}

/**
 * The blocks in a topological order that keeps metadata order wherever the graph allows (Kahn's
 * algorithm, always taking the earliest ready block). Blocks on a cycle are left out.
 */
export function topologicalOrder<B extends DagBlock>(blocks: readonly B[]): B[] {
  const index = new Map(blocks.map((b, i) => [b.uuid, i]));
  const pending = blocks.map((b) => new Set(b.upstreamBlocks.filter((u) => index.has(u))).size);
  const downstream = downstreamBlocksOf(blocks);
  // Indexes of blocks whose upstreams are all placed, kept sorted so the earliest comes first.
  const ready = pending.flatMap((count, i) => (count === 0 ? [i] : []));
  const order: B[] = [];
  while (ready.length > 0) {
    const i = ready.shift() as number;
    const block = blocks[i] as B;
    order.push(block);
    for (const child of new Set(downstream.get(block.uuid))) {
      const c = index.get(child) as number;
      pending[c] = (pending[c] as number) - 1;
      if (pending[c] === 0) ready.splice(sortedIndex(ready, c), 0, c);
    }
  }
  return order;
}

/** Where `value` goes in the ascending list to keep it sorted. */
function sortedIndex(list: readonly number[], value: number): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((list[mid] as number) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

// A loaded pipeline's block list does not change, so its fan-out map is computed once per list.
const fanOutCache = new WeakMap<readonly DagBlock[], Map<string, string[]>>();

function fanOutMap(pipeline: Pick<Pipeline, "blocks">): Map<string, string[]> {
  let map = fanOutCache.get(pipeline.blocks);
  if (!map) {
    map = fanOutUpstreams(topologicalOrder(pipeline.blocks));
    fanOutCache.set(pipeline.blocks, map);
  }
  return map;
}

/**
 * The upstream block through which `blockUuid` runs once per item (a dynamic block, or a block
 * downstream of one without reduce_output), or null if the block runs once per pipeline run.
 */
export function fanOutSourceOf(pipeline: Pick<Pipeline, "blocks">, blockUuid: string): string | null {
  return fanOutMap(pipeline).get(blockUuid)?.[0] ?? null;
}

/** True if the block runs once per item of a dynamic block upstream of it. */
export function isFanOutChild(pipeline: Pick<Pipeline, "blocks">, blockUuid: string): boolean {
  return fanOutSourceOf(pipeline, blockUuid) !== null;
}
