// Reading the opts struct of a network_* call: only known keys (a typo must not be silently
// ignored), and typed values with messages that name the option.
import { BrickError } from '../../shared/errors.js';

export function options(v: unknown, allowed: readonly string[], param = 'opts'): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new BrickError('INVALID_PARAMS', `${param}: must be a struct`);
  for (const k of Object.keys(v))
    if (!allowed.includes(k)) throw new BrickError('INVALID_PARAMS', `${param}.${k}: unknown option (known: ${allowed.join(', ')})`);
  return v as Record<string, unknown>;
}

export function optBool(v: unknown, param: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1;
  throw new BrickError('INVALID_PARAMS', `${param}: must be a boolean`);
}
