// Bounds the config and the command line share (kept apart from schema.ts, which loads TypeBox).

/**
 * The largest duration any key takes: 11.5 days. Node's timers hold at most 2^31-1 ms (24.8 days);
 * a longer one fires after 1 ms instead (TimeoutOverflowWarning), so call_timeout_s = 3000000 made
 * every call passed to the vendor agent fail at once. The margin leaves room for the sums brick
 * makes of them (a body's deadline, the fencer's start-up budget).
 */
export const MAX_SECONDS = 1_000_000;
