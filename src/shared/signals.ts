// The signals whose default action ends a Node process, for brick's two long-running commands (serve,
// fencer): each is either a clean stop or ignored, so no signal ends brick half-way through its work.
// SIGPIPE is left out: Node ignores it already.

/** Stop cleanly, as a service manager asks (SIGTERM), a person at a terminal (SIGINT, SIGQUIT). */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
/** Ignored (logged): a closing terminal's SIGHUP, a `kill -HUP` meant as a reload, stray timers. */
export const IGNORED_SIGNALS = ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGVTALRM', 'SIGPROF', 'SIGIO', 'SIGPWR', 'SIGSTKFLT', 'SIGXCPU', 'SIGXFSZ', 'SIGTRAP', 'SIGSYS'] as const;

/**
 * Signals whose default action suspends the process. A suspended fencer pets nothing, so the watchdog
 * resets the host within watchdog_timeout_s: the fencer ignores them (logged). SIGTTOU stays out: with
 * a handler, a write to a terminal from the background (stty tostop) is refused and retried forever
 * instead of suspending; the fencer has no terminal under its service, and SIGSTOP cannot be caught
 * at all (the loop's stall handling and the watchdog cover both).
 */
export const FENCER_SUSPEND_SIGNALS = ['SIGTSTP', 'SIGTTIN'] as const;

/** Call onSignal(sig) on each of `signals` this platform has; returns what removes the listeners again. */
export function onSignals(signals: readonly string[], onSignal: (sig: string) => void): () => void {
  const added: Array<[string, () => void]> = [];
  for (const sig of signals) {
    const fn = () => onSignal(sig);
    try {
      process.on(sig as NodeJS.Signals, fn);
      added.push([sig, fn]);
    } catch {
      /* a signal this platform does not have */
    }
  }
  return () => {
    for (const [sig, fn] of added) process.off(sig as NodeJS.Signals, fn);
  };
}
