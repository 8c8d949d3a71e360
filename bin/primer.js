#!/usr/bin/env node
// The `primer` executable: Primer ships as TypeScript and runs through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/index.ts');
await main(process.argv);
