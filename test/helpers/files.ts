import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every file under dir with its size and modification time: what a command that must write nothing leaves equal. */
export function snapshotFiles(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else files[p] = `${s.size}@${s.mtimeMs}`;
    }
  };
  walk(dir);
  return files;
}
