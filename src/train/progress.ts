/**
 * Training progress on the terminal: a cli-progress bar (step, loss, tokens/s, lr, ETA) when stdout
 * is a TTY, plain log lines every `logEvery` steps otherwise (CI logs, pipes, files).
 */
import cliProgress from 'cli-progress';

export interface ProgressInfo {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
  /** Seconds left at the current rate. */
  etaSeconds: number;
}

export interface ProgressReporter {
  update(info: ProgressInfo): void;
  /** A message that must not be overwritten by the bar (evaluation results, checkpoints). */
  log(message: string): void;
  stop(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const fmt = (i: ProgressInfo) => ({
  loss: i.loss.toFixed(4),
  tps: Math.round(i.tokensPerSecond).toLocaleString('en-US'),
  lr: i.lr.toExponential(2),
  eta: formatDuration(i.etaSeconds),
});

export function createProgress(opts: { tty?: boolean; logEvery?: number; write?: (line: string) => void } = {}): ProgressReporter {
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const tty = opts.tty ?? Boolean(process.stdout.isTTY);
  if (!tty) {
    const every = opts.logEvery ?? 10;
    return {
      update(i) {
        if (i.step % every !== 0 && i.step !== i.totalSteps) return;
        const f = fmt(i);
        write(`step ${i.step}/${i.totalSteps} | loss ${f.loss} | ${f.tps} tok/s | lr ${f.lr} | ETA ${f.eta}`);
      },
      log: write,
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar({
    format: 'step {value}/{total} {bar} loss {loss} | {tps} tok/s | lr {lr} | ETA {eta}',
    barsize: 24,
    hideCursor: true,
    clearOnComplete: false,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(i) {
      if (!started) {
        bar.start(i.totalSteps, i.step, fmt(i));
        started = true;
      } else {
        bar.update(i.step, fmt(i));
      }
    },
    log(message) {
      if (started) {
        // Clear the bar line, print, and let the next update redraw it.
        process.stdout.write('\r\x1b[K' + message + '\n');
      } else {
        write(message);
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
