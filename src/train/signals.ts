/**
 * Ctrl-C semantics of every training loop: the first SIGINT/SIGTERM asks the loop to stop after its
 * current step (and save what it has); a second one exits at once (130 / 143), without saving.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface StopSignals {
  /** The first signal received, if any. */
  received(): StopSignal | undefined;
  /** Removes the handlers (call once the save is done). */
  release(): void;
}

/** Installs the handlers when `listen` (else only the bookkeeping); `onFirst` runs for the first signal. */
export function catchStopSignals(listen: boolean, onFirst: (signal: StopSignal) => void): StopSignals {
  let received: StopSignal | undefined;
  const handler = (s: StopSignal) => () => {
    if (received) process.exit(s === 'SIGINT' ? 130 : 143); // second signal: give up at once
    received = s;
    onFirst(s);
  };
  const handlers = { SIGINT: handler('SIGINT'), SIGTERM: handler('SIGTERM') };
  if (listen) for (const [s, h] of Object.entries(handlers)) process.on(s, h);
  return {
    received: () => received,
    release: () => { if (listen) for (const [s, h] of Object.entries(handlers)) process.off(s, h); },
  };
}
