/**
 * The weights of a Hugging Face model directory: model.safetensors, or a sharded checkpoint described
 * by model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor name: shard file}}).
 *
 * A sharded index is checked against its shards both ways: every listed tensor is in the shard the
 * index names, and every tensor of every shard is listed (once, for that shard), so a tensor can never
 * come from two places. Shard names must be plain file names in the directory (no path components).
 * Pickle checkpoints (pytorch_model.bin) are never opened: loading one executes arbitrary code.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, SafetensorsError, type SafetensorsFile } from '../io/safetensors.ts';
import { InteropError } from './errors.ts';
import { atFile } from '../io/errors.ts';
import { readJsonFile } from '../io/json.ts';

export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
const PICKLE_FILES = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'model.bin', 'training_args.bin'];
const OTHER_FRAMEWORK_FILES = ['tf_model.h5', 'flax_model.msgpack', 'model.ckpt.index'];

export interface CheckpointTensor {
  dtype: string;
  shape: number[];
  /** Which file holds it (for messages). */
  file: string;
}

/** Tensors of one or more safetensors files, by name; values are converted to fp32 on demand. */
export class Checkpoint {
  constructor(
    readonly source: string,
    private readonly owners: ReadonlyMap<string, SafetensorsFile>,
    readonly shardCount: number,
  ) {}

  get names(): string[] {
    return [...this.owners.keys()];
  }

  has(name: string): boolean {
    return this.owners.has(name);
  }

  info(name: string): CheckpointTensor {
    const f = this.owner(name);
    const { dtype, shape } = f.info(name);
    return { dtype, shape, file: f.source };
  }

  getFloat32(name: string): Float32Array {
    return this.owner(name).getFloat32(name);
  }

  /** Total element count: bounds what a config may ask to allocate. */
  get elementCount(): number {
    let n = 0;
    for (const name of this.owners.keys()) n += this.info(name).shape.reduce((a, d) => a * d, 1);
    return n;
  }

  private owner(name: string): SafetensorsFile {
    const f = this.owners.get(name);
    if (!f) throw new InteropError('MISSING_TENSORS', `${this.source}: no tensor "${name}"`);
    return f;
  }
}

function openSafetensors(path: string): SafetensorsFile {
  try {
    return readSafetensors(path);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new InteropError('BAD_WEIGHTS', `${atFile(path, e.message)} [${e.code}]`, { cause: e });
    throw new InteropError('BAD_WEIGHTS', `${path}: cannot be read (${(e as Error).message})`, { cause: e });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A shard name from the index, refused unless it is a plain file name inside the model directory. */
function shardName(value: unknown, tensor: string, indexPath: string): string {
  if (typeof value !== 'string' || value === '' || value === '.' || value === '..' || /[/\\\0]/.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 120)) : typeof value;
    throw new InteropError('BAD_INDEX', `${indexPath}: weight_map["${tensor.slice(0, 120)}"] must be a file name in the model directory, got ${shown}`);
  }
  return value;
}

function readIndex(dir: string): Checkpoint {
  const indexPath = join(dir, SAFETENSORS_INDEX);
  const raw = readJsonFile(indexPath, (message, cause) => new InteropError('BAD_INDEX', message, { cause }));
  if (!isObject(raw) || !isObject(raw.weight_map)) throw new InteropError('BAD_INDEX', `${indexPath}: expected an object with a "weight_map" object`);
  const weightMap = new Map<string, string>();
  for (const name of Object.keys(raw.weight_map)) weightMap.set(name, shardName(raw.weight_map[name], name, indexPath));
  if (weightMap.size === 0) throw new InteropError('BAD_INDEX', `${indexPath}: weight_map is empty`);

  const shards = new Map<string, SafetensorsFile>();
  for (const shard of new Set(weightMap.values())) {
    const path = join(dir, shard);
    if (!existsSync(path) || !statSync(path).isFile()) throw new InteropError('NOT_FOUND', `${indexPath}: shard "${shard}" does not exist in ${dir}`);
    shards.set(shard, openSafetensors(path));
  }
  const owners = new Map<string, SafetensorsFile>();
  const notInShard: string[] = [];
  for (const [name, shard] of weightMap) {
    const file = shards.get(shard)!;
    if (file.has(name)) owners.set(name, file);
    else notInShard.push(`${name} (→ ${shard})`);
  }
  if (notInShard.length) throw new InteropError('BAD_INDEX', `${indexPath}: tensors listed in weight_map but absent from their shard: ${notInShard.join(', ')}`);
  const unlisted: string[] = [];
  for (const [shard, file] of shards) {
    for (const name of file.names) if (weightMap.get(name) !== shard) unlisted.push(`${name} (in ${shard})`);
  }
  if (unlisted.length) throw new InteropError('BAD_INDEX', `${indexPath}: shard tensors not listed for their shard in weight_map: ${unlisted.join(', ')}`);
  return new Checkpoint(indexPath, owners, shards.size);
}

/** Opens the directory's safetensors weights (single file or sharded index); refuses pickle-only checkpoints. */
export function readCheckpoint(dir: string): Checkpoint {
  const single = join(dir, SAFETENSORS_FILE);
  if (existsSync(single)) {
    const file = openSafetensors(single);
    return new Checkpoint(single, new Map(file.names.map((n) => [n, file])), 1);
  }
  if (existsSync(join(dir, SAFETENSORS_INDEX))) return readIndex(dir);
  const pickle = PICKLE_FILES.find((f) => existsSync(join(dir, f)));
  if (pickle) {
    throw new InteropError('PICKLE_REFUSED',
      `${dir} holds only ${pickle}, a pickle checkpoint. Primer never executes pickle (loading it can run arbitrary code); ` +
      `convert to safetensors with: python -c "from transformers import AutoModel; ` +
      `AutoModel.from_pretrained('${dir}').save_pretrained('${dir}', safe_serialization=True)" ` +
      `(or the Hugging Face "convert to safetensors" Space), then import again`);
  }
  const other = OTHER_FRAMEWORK_FILES.find((f) => existsSync(join(dir, f)));
  if (other) throw new InteropError('NO_WEIGHTS', `${dir} holds only ${other}; Primer reads safetensors weights (model.safetensors or ${SAFETENSORS_INDEX})`);
  throw new InteropError('NO_WEIGHTS', `${dir}: no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX}`);
}
