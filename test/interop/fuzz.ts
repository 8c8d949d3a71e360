/**
 * Seeded mutations of JSON documents and safetensors files, for fuzzing the importer. Each case is a
 * pure function of (seed, input), so a failure report's seed reproduces it.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

function nested(depth: number): Json {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** Values that break naive readers: wrong types, extremes, huge/odd strings, deep nesting, proto keys. */
function nastyValue(rnd: () => number): Json {
  return pick<() => Json>(rnd, [
    () => null, () => true, () => false, () => 0, () => -1, () => 1, () => 0.5, () => -0, () => 2 ** 31, () => 2 ** 53,
    () => 1e300, () => -1e300, () => 1e-300, () => Math.floor(rnd() * 1e6), () => '', () => 'x', () => '\u0000',
    () => '../../etc/passwd', () => 'a'.repeat(10_000), () => '\uD800', () => 'F16', () => 'I64', () => 'BPE', () => 'WordPiece',
    () => [], () => [1, 2], () => [[0, 1], [1, 2]], () => ['a', 'b'], () => ({}), () => ({ __proto__: 1 } as Json),
    () => JSON.parse('{"__proto__": {"polluted": 1}}') as Json, () => ({ a: 1 }), () => nested(200), () => [-1, 1e18],
  ])();
}

/** Every container path in the document (root included), for choosing where to mutate. */
function paths(v: Json, at: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (out.length > 5000) return out;
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k]!, [...at, k], out);
  return out;
}

function getAt(v: Json, path: Array<string | number>): Json {
  let cur: Json = v;
  for (const p of path) cur = (cur as Record<string, Json>)[p as string]!;
  return cur;
}

/** One structural mutation in place (on a deep copy the caller owns). */
function mutateTree(root: Json, rnd: () => number): Json {
  const all = paths(root);
  const path = pick(rnd, all);
  if (path.length === 0) return rnd() < 0.5 ? nastyValue(rnd) : root;
  const parent = getAt(root, path.slice(0, -1)) as Record<string, Json> | Json[];
  const key = path[path.length - 1]!;
  const op = rnd();
  if (op < 0.45) (parent as Record<string, Json>)[key as string] = nastyValue(rnd);
  else if (op < 0.65) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key as string];
  } else if (op < 0.75 && !Array.isArray(parent)) parent[pick(rnd, ['extra', '__proto__', 'constructor', '', String(key) + 'x'])] = nastyValue(rnd);
  else if (op < 0.85 && Array.isArray(parent)) parent.push(parent[key as number]!);
  else {
    const cur = (parent as Record<string, Json>)[key as string];
    // Same kind, bad value: numbers pushed to extremes, strings garbled, containers emptied.
    (parent as Record<string, Json>)[key as string] = typeof cur === 'number' ? pick(rnd, [-cur, cur * 1e9, cur + 0.5, 0, -1])
      : typeof cur === 'string' ? pick(rnd, ['', cur + cur, cur.slice(1), cur.toUpperCase(), '\uDC00' + cur]) : Array.isArray(cur) ? [] : cur === null ? 0 : {};
  }
  return root;
}

/** Byte-level damage to a text: truncation, a flipped byte, an inserted character. */
function mutateText(text: string, rnd: () => number): string {
  const at = Math.floor(rnd() * (text.length + 1));
  const op = rnd();
  if (op < 0.3) return text.slice(0, at);
  if (op < 0.6) return text.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 128)) + text.slice(at + 1);
  if (op < 0.9) return text.slice(0, at) + pick(rnd, ['{', '}', '"', ',', ']', '\\', '\u0000', 'null']) + text.slice(at);
  return pick(rnd, ['', 'null', '[]', '"x"', '{}', '\uFEFF{}']);
}

/** A mutated JSON document: mostly 1–3 structural mutations, sometimes text damage. */
export function mutateJson(text: string, rnd: () => number): string {
  if (rnd() < 0.2) return mutateText(text, rnd);
  let tree = JSON.parse(text) as Json;
  const n = 1 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) tree = mutateTree(tree, rnd);
  return JSON.stringify(tree);
}

/** A safetensors file with a mutated header (re-framed with a correct length), or a damaged frame. */
export function mutateSafetensors(bytes: Uint8Array, rnd: () => number): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)).trimEnd();
  const data = bytes.subarray(8 + headerLength);
  const op = rnd();
  if (op < 0.15) {
    const out = new Uint8Array(bytes); // a copy (Buffer#slice would be a view of the original)
    new DataView(out.buffer).setBigUint64(0, pick(rnd, [0n, 1n, 7n, BigInt(headerLength + 1), BigInt(headerLength - 1), 2n ** 63n, 2n ** 64n - 1n, 100_000_001n]), true);
    return out;
  }
  if (op < 0.25) return new Uint8Array(bytes.subarray(0, Math.floor(rnd() * bytes.byteLength)));
  const mutated = new TextEncoder().encode(op < 0.4 ? mutateText(header, rnd) : mutateJson(header, rnd));
  const padded = Math.ceil(mutated.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded + data.byteLength).fill(0x20, 8 + mutated.byteLength, 8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(mutated, 8);
  out.set(data, 8 + padded);
  return out;
}
