import type { Config } from '../config/schema.js';
import type { LogFormat } from '../shared/log.js';
import { BrickError } from '../shared/errors.js';

export interface FencerOptions {
  logFormat: LogFormat;
  logLevel?: string;
}

/** Run the heartbeat watchdog until a clean stop; resolves to the exit code. */
export async function runFencer(_config: Config, _opts: FencerOptions): Promise<number> {
  throw new BrickError('UNSUPPORTED', 'brick fencer is not built yet');
}
