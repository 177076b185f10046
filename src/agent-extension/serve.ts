import type { Config } from '../config/schema.js';
import type { LogFormat } from '../shared/log.js';
import { BrickError } from '../shared/errors.js';

export interface ServeOptions {
  logFormat: LogFormat;
  logLevel?: string;
  configPath?: string;
}

/** Run the XML-RPC server until SIGTERM/SIGINT; resolves to the exit code. */
export async function serve(_config: Config, _opts: ServeOptions): Promise<number> {
  throw new BrickError('UNSUPPORTED', 'brick serve is not built yet');
}
