// npm's install step for the native addon. A package installed from the registry carries a linux-x64
// prebuild (x86-64-v3: AVX2+FMA); it is used when it fits this machine, and otherwise — another
// platform, an older CPU, `npm install --build-from-source`, or a checkout without prebuilds — the addon
// is compiled from source with node-gyp (needs a C compiler, make and Python; see README).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;

function prebuildFits() {
  if (process.env.npm_config_build_from_source === 'true') return false;
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  if (!existsSync(join(root, 'prebuilds', 'linux-x64', 'node.napi.node'))) return false;
  try {
    const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
    // x86-64-v3's features (abm is how /proc/cpuinfo names LZCNT); src/backend/native.ts checks the same at load time.
    return ['avx', 'avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe', 'abm'].every((f) => flags.has(f));
  } catch {
    return false;
  }
}

if (prebuildFits()) process.exit(0);
const r = spawnSync('node-gyp', ['rebuild', '-j', 'max'], { stdio: 'inherit', cwd: root, shell: process.platform === 'win32' });
if (r.error) {
  console.error(`primer: could not run node-gyp to compile the native addon: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
