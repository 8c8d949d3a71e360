/**
 * Guarding a command's inputs from its own output: `finetune --out` equal to `--model` used to
 * replace the pre-trained model with the classifier without a word. Every command that writes
 * into an --out directory checks it against the directories it reads before anything is written.
 */
import { realpathSync } from 'node:fs';
import { relative, resolve, isAbsolute, sep } from 'node:path';
import { PrimerError } from './errors.ts';

/** The real path (symlinks resolved) of the nearest existing ancestor, plus the part that does not exist yet. */
function canonical(path: string): string {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return resolve(realpathSync(head), ...[...tail].reverse());
    } catch {
      const parent = resolve(head, '..');
      if (parent === head) return resolve(path);
      tail.push(head.slice(parent.length).replace(/^[\\/]/, ''));
      head = parent;
    }
  }
}

function isWithin(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

/**
 * Throws a PrimerError (code OUT_IS_INPUT) when `out` is one of the input directories, or contains
 * one (writing there, or cleaning it up, would destroy the input). `inputs` maps a flag name
 * (e.g. "--model") to its path; undefined entries are skipped. An output inside an input directory
 * (`--out model/finetuned`) is allowed: it adds files without touching the input's own.
 */
export function refuseOutputOverInput(out: string, inputs: Record<string, string | undefined>, outFlag = '--out'): void {
  const target = canonical(out);
  for (const [flag, path] of Object.entries(inputs)) {
    if (path === undefined) continue;
    const input = canonical(path);
    if (input === target) {
      throw new PrimerError('OUT_IS_INPUT', `${outFlag} ${out} is the ${flag} directory: writing there would overwrite the input; choose another ${outFlag}`);
    }
    if (isWithin(input, target)) {
      throw new PrimerError('OUT_IS_INPUT', `${outFlag} ${out} contains the ${flag} path ${path}: writing there could overwrite the input; choose another ${outFlag}`);
    }
  }
}
