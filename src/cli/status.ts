import type { Config } from '../config/schema.js';
import type { Io } from './main.js';
import { BrickError } from '../shared/errors.js';

export async function status(_config: Config, _opts: { json: boolean; io: Io }): Promise<number> {
  throw new BrickError('UNSUPPORTED', 'brick status is not built yet');
}
