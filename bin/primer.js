#!/usr/bin/env node
// The `primer` executable. From a checkout (src/ present) it runs the TypeScript sources through
// tsx, so edits take effect without a build; an installed package runs the JavaScript that
// `npm pack` emitted into dist/ (src/ is not shipped), with plain Node.
import { existsSync } from 'node:fs';

const checkout = new URL('../src/cli/index.ts', import.meta.url);
let cli;
if (existsSync(checkout)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(checkout.href);
} else {
  cli = await import('../dist/cli/index.js');
}
await cli.main(process.argv);
