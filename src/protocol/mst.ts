import { fromString as bytesFromString, toString as bytesToString } from "multiformats/bytes";
import type { CID } from "./cid";
import { cidForDagCbor, cidKey } from "./cid";
import { ProtocolError } from "./errors";
import type { RepoOp } from "./frame";
import { decodeMstNode, encodeMstNode, type NodeEntry } from "./mst-node";
import { sha256 } from "./sha256";

// Merkle Search Tree checks for sync 1.1 (atproto repository spec): a #commit carries, in its
// CAR, the MST nodes that prove its ops against the new root (`commit.data`). A relay can then
// (a) check each op against that partial tree and (b) invert the ops and recompute the previous
// root, which must equal `prevData`: the commit really is the diff it claims to be.
//
// The tree is handled as a sorted list of items: leaves we can see (key, value) and opaque
// subtrees we were not given (CID, layer). Rebuilding a root from items follows the MST's
// deterministic shape (a key's layer is its number of leading zero bit-pairs of sha256), reusing
// an opaque subtree's CID where the shape keeps it whole; where an op would need the inside of a
// subtree the proof left out, the proof is insufficient (InvalidMstProof).

export type MstLeaf = {
  kind: "leaf";
  key: string;
  value: CID;
  layer: number;
  /** The key's UTF-8 bytes when already at hand (read from a node), saving an encode. */
  keyBytes?: Uint8Array;
};
export type MstOpaque = { kind: "opaque"; cid: CID; layer: number };
export type MstItem = MstLeaf | MstOpaque;

// multiformats' helpers wrap the runtime's TextEncoder/TextDecoder (pure code has no DOM types)
const utf8 = { encode: bytesFromString };
const utf8Decoder = { decode: bytesToString };

function invalid(message: string): ProtocolError {
  return new ProtocolError("InvalidMstProof", message);
}

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] as number) >= 0x80) return false;
  return true;
}

function asciiString(bytes: Uint8Array): string {
  // one flat string (appending a character at a time builds a rope, flattened at each compare)
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Layer of a key: leading zero bits of sha256(key), counted in pairs (fanout 4). */
export function mstKeyHeight(key: string): number {
  return keyBytesHeight(utf8.encode(key));
}

function keyBytesHeight(keyBytes: Uint8Array): number {
  const hash = sha256(keyBytes);
  let zeros = 0;
  for (const byte of hash) {
    if (byte === 0) {
      zeros += 8;
      continue;
    }
    zeros += Math.clz32(byte) - 24;
    break;
  }
  return Math.floor(zeros / 2);
}

function encodeNode(
  left: CID | null,
  leaves: { key: string; keyBytes?: Uint8Array; value: CID; right: CID | null }[],
): Uint8Array {
  const entries: NodeEntry[] = [];
  let previous: Uint8Array = new Uint8Array(0);
  for (const leaf of leaves) {
    const key = leaf.keyBytes ?? utf8.encode(leaf.key);
    let p = 0;
    while (p < previous.length && p < key.length && previous[p] === key[p]) p++;
    entries.push({ k: key.subarray(p), p, v: leaf.value, t: leaf.right });
    previous = key;
  }
  return encodeMstNode({ l: left, e: entries });
}

/** CID of the empty tree (a node with no entries and no subtree). */
export function emptyTreeCid(): CID {
  return cidForDagCbor(encodeNode(null, []));
}

function buildLayer(items: MstItem[], layer: number, blocks: Map<string, Uint8Array> | null): CID {
  if (items.length === 1 && items[0]?.kind === "opaque" && items[0].layer === layer)
    return items[0].cid;
  if (layer < 0) throw invalid("keys below layer 0");
  const segments: MstItem[][] = [[]];
  const leaves: MstLeaf[] = [];
  for (const item of items) {
    if (item.kind === "leaf" && item.layer === layer) {
      leaves.push(item);
      segments.push([]);
    } else if (item.layer >= layer) {
      // a subtree we cannot see would have to be merged with something: the proof is short
      throw invalid("the proof lacks a node that the previous tree's shape depends on");
    } else {
      (segments[segments.length - 1] as MstItem[]).push(item);
    }
  }
  const child = (segment: MstItem[]): CID | null =>
    segment.length === 0 ? null : buildLayer(segment, layer - 1, blocks);
  const left = child(segments[0] as MstItem[]);
  const bytes = encodeNode(
    left,
    leaves.map((leaf, i) => ({
      key: leaf.key,
      keyBytes: leaf.keyBytes,
      value: leaf.value,
      right: child(segments[i + 1] as MstItem[]),
    })),
  );
  const cid = cidForDagCbor(bytes);
  blocks?.set(cid.toString(), bytes);
  return cid;
}

/** The root CID of the tree made of `items` (sorted by key); optionally collects its blocks. */
export function mstRoot(items: MstItem[], blocks: Map<string, Uint8Array> | null = null): CID {
  if (items.length === 0) {
    const bytes = encodeNode(null, []);
    const cid = cidForDagCbor(bytes);
    blocks?.set(cid.toString(), bytes);
    return cid;
  }
  let top = 0;
  for (const item of items) top = Math.max(top, item.layer);
  return buildLayer(items, top, blocks);
}

/** Leaves for a full key set (every key with the same value), sorted, with their layers. */
export function leavesOf(entries: [string, CID][]): MstLeaf[] {
  return [...entries]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => ({ kind: "leaf", key, value, layer: mstKeyHeight(key) }));
}

/**
 * Reads the tree under `root` from the blocks at hand: nodes present become leaves and
 * children, nodes absent become opaque subtrees. The root itself must be present.
 */
export function loadMstItems(root: CID, blocks: Map<string, Uint8Array>): MstItem[] {
  const rootBytes = blocks.get(cidKey(root));
  if (!rootBytes) throw invalid("the MST root is not in the commit's blocks");
  const items: MstItem[] = [];
  const walk = (cid: CID, layerHint: number | null, depth: number): void => {
    if (depth > 64) throw invalid("MST too deep");
    const bytes = blocks.get(cidKey(cid));
    if (!bytes) {
      if (layerHint === null) throw invalid("missing MST node");
      items.push({ kind: "opaque", cid, layer: layerHint });
      return;
    }
    const node = decodeMstNode(bytes);
    // each entry's full key (prefix-compressed in the node) and its layer, checked below
    const leaves: MstLeaf[] = [];
    let previous: Uint8Array = new Uint8Array(0);
    for (const entry of node.e) {
      if (entry.p > previous.length) throw invalid("MST key prefix longer than the previous key");
      const full = new Uint8Array(entry.p + entry.k.length);
      for (let j = 0; j < entry.p; j++) full[j] = previous[j] as number;
      full.set(entry.k, entry.p);
      // an ASCII key is its own UTF-8 encoding: hash the bytes at hand; any other key is hashed
      // as its decoded string re-encoded, as mstKeyHeight does (a malformed sequence decodes
      // to U+FFFD, and the tree is checked as the string keys say)
      if (isAscii(full)) {
        leaves.push({
          kind: "leaf",
          key: asciiString(full),
          value: entry.v,
          layer: keyBytesHeight(full),
          keyBytes: full,
        });
      } else {
        const key = utf8Decoder.decode(full);
        leaves.push({ kind: "leaf", key, value: entry.v, layer: mstKeyHeight(key) });
      }
      previous = full;
    }
    let layer = layerHint;
    const first = leaves[0];
    if (first) {
      if (layer !== null && first.layer !== layer) throw invalid("MST entry on the wrong layer");
      layer = first.layer;
    }
    if (layer === null) {
      // an entry-less root: only the empty tree is allowed to be one
      if (node.l !== null) throw invalid("MST root without entries");
      return;
    }
    if (node.l) walk(node.l, layer - 1, depth + 1);
    for (let i = 0; i < leaves.length; i++) {
      const leaf = leaves[i] as MstLeaf;
      if (leaf.layer !== layer) throw invalid("MST entry on the wrong layer");
      items.push(leaf);
      const right = (node.e[i] as NodeEntry).t;
      if (right) walk(right, layer - 1, depth + 1);
    }
  };
  walk(root, null, 0);
  for (let i = 1; i < items.length; i++) {
    const a = items[i - 1] as MstItem;
    const b = items[i] as MstItem;
    if (a.kind === "leaf" && b.kind === "leaf" && a.key >= b.key)
      throw invalid("MST keys out of order");
  }
  return items;
}

/** Index range [from, to) of the items between the leaves around `key`, and the leaf if present. */
function locate(items: MstItem[], key: string): { found: number | null; from: number; to: number } {
  let from = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as MstItem;
    if (item.kind !== "leaf") continue;
    if (item.key === key) return { found: i, from: i, to: i + 1 };
    if (item.key < key) from = i + 1;
    else return { found: null, from, to: i };
  }
  return { found: null, from, to: items.length };
}

function gapIsVisible(items: MstItem[], from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (items[i]?.kind === "opaque") return false;
  return true;
}

export type CommitOpsCheck = { ok: true; previousRoot: CID | null } | { ok: false; reason: string };

/**
 * Checks a commit's ops against the MST proof in its blocks and, when every op carries what
 * inversion needs (`prev` for updates and deletes), recomputes the previous root. Returns the
 * previous root so the caller can compare it with `prevData`; `previousRoot` is null when the
 * ops cannot be inverted (a commit without `prev` on its updates/deletes, as before sync 1.1).
 */
export function checkCommitOps(
  data: CID,
  ops: RepoOp[],
  blocks: Map<string, Uint8Array>,
): CommitOpsCheck {
  let items: MstItem[];
  try {
    items = loadMstItems(data, blocks);
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  let invertible = true;
  for (const op of ops) {
    const at = locate(items, op.path);
    if (op.action === "delete") {
      if (at.found !== null)
        return { ok: false, reason: `deleted ${op.path} is still in the tree` };
      if (!gapIsVisible(items, at.from, at.to))
        return { ok: false, reason: `the proof does not show ${op.path} is gone` };
      if (!op.prev) {
        invertible = false;
        continue;
      }
      items.splice(at.from, 0, {
        kind: "leaf",
        key: op.path,
        value: op.prev,
        layer: mstKeyHeight(op.path),
      });
      continue;
    }
    if (at.found === null) return { ok: false, reason: `${op.path} is not in the proof` };
    const leaf = items[at.found] as MstLeaf;
    if (!op.cid || !leaf.value.equals(op.cid))
      return { ok: false, reason: `${op.path} has another value in the tree` };
    if (op.action === "create") {
      items.splice(at.found, 1);
    } else if (op.prev) {
      items[at.found] = { ...leaf, value: op.prev };
    } else {
      invertible = false;
    }
  }
  if (!invertible) return { ok: true, previousRoot: null };
  try {
    return { ok: true, previousRoot: mstRoot(items) };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
