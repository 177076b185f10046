// The config's compiled validator. In development (tsx, tests) Ajv compiles it here on first use;
// the bundle (scripts/build-bundle.mjs) replaces this module with the same validator generated as
// code at build time (Ajv standalone, same schema and options), so the shipped binary neither loads
// Ajv's compiler nor compiles the schema at start.
import { Ajv, type ValidateFunction } from 'ajv';
import { ConfigSchema, type Config } from './schema.js';

export const AJV_OPTIONS = { allErrors: true, verbose: true, useDefaults: true, strict: false, coerceTypes: false } as const;

export function configValidator(): ValidateFunction<Config> {
  return new Ajv(AJV_OPTIONS).compile<Config>(ConfigSchema);
}
