/** Shared helpers for benchmark scripts: machine description and BENCHMARKS.md section updates. */
import { readFileSync, writeFileSync, renameSync, existsSync, mkdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

export function machineDescription(): string {
  const c = cpus();
  return `${c[0]?.model ?? 'unknown CPU'}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

/** Writes bench/results/<name>.json atomically. */
export function writeResults(name: string, data: unknown): string {
  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path + '.tmp', JSON.stringify(data, null, 2) + '\n');
  renameSync(path + '.tmp', path);
  return path;
}

/**
 * Replaces (or appends) the `## <title>` section of BENCHMARKS.md with `body`, leaving the other
 * sections untouched. The section gets a header line with machine, command and date.
 */
export function writeBenchmarkSection(title: string, command: string, body: string): void {
  const path = join(repoRoot, 'BENCHMARKS.md');
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const header = `## ${title}\n\nMachine: ${machineDescription()}. Command: \`${command}\`. Date: ${new Date().toISOString().slice(0, 10)}.\n\n`;
  const section = header + body.trim() + '\n';
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l === `## ${title}`);
  let out: string;
  if (start < 0) {
    out = text.trimEnd() + '\n\n' + section;
  } else {
    let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
    if (end < 0) end = lines.length;
    out = [...lines.slice(0, start), ...section.trimEnd().split('\n'), '', ...lines.slice(end)].join('\n');
  }
  writeFileSync(path + '.tmp', out.trimEnd() + '\n');
  renameSync(path + '.tmp', path);
}

/** The CPU's family/model and the vector extensions that decide which kernels run (x86 /proc/cpuinfo). */
export function cpuFlags(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '?';
    const flags = new Set(field('flags').split(/\s+/));
    const wanted = ['avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_tile'].filter((f) => flags.has(f));
    return `family ${field('cpu family')} model ${field('model')}, ${wanted.join(' ') || 'no AVX2'}`;
  } catch {
    return process.arch;
  }
}
