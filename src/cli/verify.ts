/** `primer verify`: compare a model's forward/backward with PyTorch reference tensors (JSON report). */
import type { Command } from 'commander';
import { verifyModel } from '../train/verify.ts';
import { action, floatArg } from './options.ts';

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('run a model on inputs.json and compare logits, losses and gradients with expected.safetensors')
    .requiredOption('--model <dir>', 'model directory in Hugging Face layout (config.json + model.safetensors)')
    .option('--inputs <file>', 'inputs.json (default <model>/inputs.json)')
    .option('--expected <file>', 'expected.safetensors (default <model>/expected.safetensors)')
    .option('--tol <x>', 'maximum relative error', floatArg(0), 1e-4)
    .action(action((o: { model: string; inputs?: string; expected?: string; tol: number }) => {
      const report = verifyModel({ modelDir: o.model, inputs: o.inputs, expected: o.expected, tol: o.tol });
      // Infinity (a missing tensor) is not JSON; spell it out.
      console.log(JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2));
      if (!report.passed) {
        console.error(`primer verify: FAILED — ${report.failed.length} of ${report.checked} tensors exceed tol ${o.tol}: ${report.failed.join(', ')}`);
        process.exitCode = 1;
      }
    }));
}
