/**
 * Task models' labels (HF config.json id2label / label2id) and the error for bad task data, which
 * names file, line and column: the heads (heads.ts) carry a LabelMap, and the data readers of
 * src/tasks throw TaskDataError.
 */
import { PrimerError } from '../io/errors.ts';

/** Bad task data; `file`, `line` and `column` (1-based, column in UTF-16 code units) say where. */
export class TaskDataError extends PrimerError {
  constructor(readonly file: string, readonly line: number, readonly column: number, message: string) {
    super('TASK_DATA', `${file}:${line}:${column}: ${message}`);
  }
}

interface Where {
  file: string;
  line: number;
  column: number;
}

/** Label strings ↔ class ids, in a fixed order (sorted, numerically when every label is a number). */
export class LabelMap {
  readonly labels: readonly string[];
  private readonly ids: Map<string, number>;

  constructor(labels: readonly string[]) {
    if (labels.length === 0) throw new RangeError('LabelMap: no labels');
    this.ids = new Map();
    labels.forEach((l, i) => {
      if (this.ids.has(l)) throw new RangeError(`LabelMap: label ${JSON.stringify(l)} appears twice`);
      this.ids.set(l, i);
    });
    this.labels = [...labels];
  }

  /** The distinct labels of the (training) data, sorted. */
  static fromLabels(values: Iterable<string | undefined>): LabelMap {
    const set = new Set<string>();
    for (const v of values) if (v !== undefined) set.add(v);
    const all = [...set];
    const numeric = all.every((l) => l.trim() !== '' && Number.isFinite(Number(l)));
    all.sort(numeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return new LabelMap(all);
  }

  /** From a config.json's id2label (keys "0".."K-1"). */
  static fromConfig(config: { id2label?: Record<string, string> }): LabelMap {
    const m = config.id2label;
    if (!m) throw new RangeError('LabelMap.fromConfig: config has no id2label');
    const n = Object.keys(m).length;
    return new LabelMap(Array.from({ length: n }, (_, i) => {
      const l = m[String(i)];
      if (l === undefined) throw new RangeError(`LabelMap.fromConfig: id2label has no entry "${i}"`);
      return l;
    }));
  }

  get size(): number {
    return this.labels.length;
  }

  has(label: string): boolean {
    return this.ids.has(label);
  }

  /** The class id; an unknown label throws, naming where it was read when `where` is given. */
  id(label: string, where?: Where): number {
    const id = this.ids.get(label);
    if (id !== undefined) return id;
    const known = this.labels.length > 20 ? `${this.labels.slice(0, 20).join(', ')}, … (${this.labels.length} in all)` : this.labels.join(', ');
    const msg = `unknown label ${JSON.stringify(label)} (the model knows: ${known})`;
    if (where) throw new TaskDataError(where.file, where.line, where.column, msg);
    throw new RangeError(msg);
  }

  label(id: number): string {
    const l = this.labels[id];
    if (l === undefined) throw new RangeError(`LabelMap: no label with id ${id} (0..${this.labels.length - 1})`);
    return l;
  }

  /** Class ids of labelled examples (each must carry a known label). */
  encode(examples: ReadonlyArray<{ label?: string; where?: Where }>): Int32Array {
    return Int32Array.from(examples, (ex, i) => {
      if (ex.label === undefined) throw new RangeError(`LabelMap.encode: example ${i} has no label`);
      return this.id(ex.label, ex.where);
    });
  }

  /** Tag ids of one tagged sentence. */
  encodeTags(example: { tags: readonly string[]; where?: readonly Where[] }): number[] {
    return example.tags.map((t, i) => this.id(t, example.where?.[i]));
  }

  /** HF config.json fields (id2label keys are strings, as transformers writes them). */
  toConfig(): { id2label: Record<string, string>; label2id: Record<string, number> } {
    return {
      id2label: Object.fromEntries(this.labels.map((l, i) => [String(i), l])),
      label2id: Object.fromEntries(this.labels.map((l, i) => [l, i])),
    };
  }
}
