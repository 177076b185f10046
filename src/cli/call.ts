import type { Io } from './main.js';
import { BrickError } from '../shared/errors.js';

export interface CallOptions {
  url?: string;
  user?: string;
  passwordFile?: string;
  configPath?: string;
  insecure: boolean;
  timeout?: string;
}

export async function call(_o: CallOptions, _method: string, _args: string[], _io: Io): Promise<number> {
  throw new BrickError('UNSUPPORTED', 'brick call is not built yet');
}
