// The fencer's monotonic clock: milliseconds since this module loaded, from CLOCK_MONOTONIC
// (process.hrtime), as performance.now() counts from the process's start. The global `performance`
// loads perf_hooks and its timing modules (about 0.5 MB of the fencer's idle RSS) for nothing else.
const origin = process.hrtime.bigint();

export const monoMs = (): number => Number(process.hrtime.bigint() - origin) / 1e6;
