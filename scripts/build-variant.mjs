// Compiles the native addon for another instruction-set level straight with the C compiler (no
// node-gyp), to prove the kernels build and pass without AVX-512 (x86-64-v3 = AVX2+FMA) and with
// plain SSE2 (x86-64, where only the generic vector-extension fallbacks remain), and the package's
// prebuilds (x86-64-v3; x86-64-v4 with -mavx512bf16). Further arguments are passed to the compiler.
// Usage: node scripts/build-variant.mjs x86-64-v3 /tmp/primer_v3.node [-mavx512bf16 …]
import { execFileSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';

const [march, out, ...extra] = process.argv.slice(2);
if (!march || !out) {
  console.error('usage: node scripts/build-variant.mjs MARCH OUT.node');
  process.exit(2);
}
const candidates = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
const include = candidates.find((d) => existsSync(join(d, 'node_api.h')));
if (!include) {
  console.error(`node_api.h not found in ${candidates.join(', ')}`);
  process.exit(1);
}
const sources = readdirSync('native').filter((f) => f.endsWith('.c')).map((f) => join('native', f));
const cc = process.env.CC ?? 'gcc';
const args = ['-shared', '-fPIC', '-O3', `-march=${march}`, ...extra, '-fopenmp', '-std=gnu11', '-ffp-contract=fast', '-fno-math-errno',
  `-I${include}`, '-DNAPI_VERSION=8', '-DNODE_GYP_MODULE_NAME=primer_native', ...sources, '-o', out, '-lm'];
execFileSync(cc, args, { stdio: 'inherit' });
console.log(`built ${out} (-march=${march}${extra.length ? ` ${extra.join(' ')}` : ''})`);
