// The fencer's monotonic clock: milliseconds since this module loaded, from CLOCK_MONOTONIC
// (process.hrtime), as performance.now() counts from the process's start. The global `performance`
// loads perf_hooks and its timing modules (about 0.5 MB of the fencer's idle RSS) for nothing else.
const origin = process.hrtime.bigint();

export const monoMs = (): number => Number(process.hrtime.bigint() - origin) / 1e6;

/**
 * CLOCK_MONOTONIC itself, in ms: the same clock in every process of this boot, so a stamp one fencer
 * writes and the next one reads gives the time between them whatever the wall clock did meanwhile.
 */
export const bootMonoMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;
