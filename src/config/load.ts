// Read, default and validate the config. Every problem is collected and reported at once, one line
// each, naming the key: `fencer.fence_after_s: must be ...`.
import { readFileSync } from 'node:fs';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { type Config } from './schema.js';
import { configValidator } from './validator.js';
import { configWarnings, crossFieldProblems } from './rules.js';

export const DEFAULT_CONFIG_PATH = '/etc/brick/brick.toml';

export interface ConfigResult {
  config?: Config;
  problems: string[];
  /** A valid config that protects less than it seems (check-config prints them, exit 0). */
  warnings?: string[];
}

// Compiled on first use, not at import: `brick --version` should not pay for it.
let compiled: ValidateFunction<Config> | undefined;
function validateSchema(data: unknown): data is Config {
  compiled ??= configValidator();
  const ok = compiled(data);
  validateSchema.errors = compiled.errors ?? [];
  return ok;
}
validateSchema.errors = [] as ErrorObject[];

/** Drop every value the schema rejected (and unknown keys), so defaults fill the holes. */
function withoutBadValues(data: Record<string, unknown>, errors: ErrorObject[]): void {
  for (const e of errors) {
    const parts = e.instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (e.keyword === 'additionalProperties') parts.push((e.params as { additionalProperty: string }).additionalProperty);
    if (!parts.length) continue;
    let node: unknown = data;
    for (const p of parts.slice(0, -1)) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[p] : undefined;
    if (!node || typeof node !== 'object') continue;
    const last = parts[parts.length - 1];
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete (node as Record<string, unknown>)[last];
  }
}

function keyOf(e: ErrorObject): string {
  const parts = e.instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let key = '';
  for (const p of parts) key += /^\d+$/.test(p) ? `[${p}]` : (key ? '.' : '') + p;
  return key;
}

function closest(word: string, options: string[]): string | undefined {
  // Levenshtein distance ≤ 2 is a likely typo.
  const d = (a: string, b: string) => {
    const m = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) m[0][j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        m[i][j] = Math.min(m[i - 1][j] + 1, m[i][j - 1] + 1, m[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    return m[a.length][b.length];
  };
  let best: string | undefined;
  let bestD = 3;
  for (const o of options) {
    const dist = d(word, o);
    if (dist < bestD) [best, bestD] = [o, dist];
  }
  return best;
}

function describe(e: ErrorObject): string {
  const key = keyOf(e);
  const prefix = key ? `${key}: ` : '';
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const full = key ? `${key}.${extra}` : extra;
      const props = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      const hint = closest(extra, props);
      return `${full}: unknown key${hint ? ` (did you mean ${hint}?)` : ''}`;
    }
    case 'type': {
      const t = (e.params as { type: string }).type;
      return `${prefix}must be ${t === 'object' ? 'a table' : (/^[aeiou]/.test(t) ? 'an ' : 'a ') + t}`;
    }
    case 'minimum':
    case 'exclusiveMinimum':
    case 'maximum':
    case 'exclusiveMaximum': {
      const p = e.params as { comparison: string; limit: number };
      return `${prefix}must be a number ${p.comparison} ${p.limit}`;
    }
    case 'minLength':
      return `${prefix}must not be empty`;
    case 'anyOf': {
      const branches = ((e.parentSchema as { anyOf?: Array<{ const?: unknown; type?: string }> })?.anyOf ?? []).map((b) =>
        b.const !== undefined ? JSON.stringify(b.const) : (b.type ?? '?'),
      );
      return `${prefix}must be one of ${branches.join(', ')}`;
    }
    case 'required':
      return `${key ? key + '.' : ''}${(e.params as { missingProperty: string }).missingProperty}: required`;
    default:
      return `${prefix}${e.message ?? 'is invalid'}`;
  }
}

/** Validate an already-parsed TOML document. Defaults are filled in place. */
export function validateConfig(doc: unknown): ConfigResult {
  const data = structuredClone(doc ?? {}) as Record<string, unknown>;
  const ok = validateSchema(data);
  if (!ok) {
    // anyOf errors come with one child error per failed branch: keep only the anyOf line.
    const errors = validateSchema.errors ?? [];
    const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
    const lines = errors
      .filter((e) => e.keyword === 'anyOf' || !anyOfPaths.has(e.instancePath))
      .map(describe);
    // Also report the cross-field rules, judged on what is left once the rejected values fall
    // back to their defaults, so one run lists every problem; a rule about a key that already
    // has a problem is not repeated.
    const keysWithProblems = new Set(lines.map((l) => l.split(':')[0]));
    const rest = structuredClone(doc ?? {}) as Record<string, unknown>;
    let cross: string[] = [];
    for (let i = 0; i < 3 && !validateSchema(rest); i++) withoutBadValues(rest, validateSchema.errors);
    if (validateSchema(rest)) cross = crossFieldProblems(rest as unknown as Config).filter((l) => !keysWithProblems.has(l.split(':')[0]));
    return { problems: [...new Set([...lines, ...cross])] };
  }
  const config = data as unknown as Config;
  const problems = crossFieldProblems(config);
  return problems.length ? { problems } : { config, problems, warnings: configWarnings(config) };
}

export function parseConfigText(text: string, source = 'config'): ConfigResult {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      return { problems: [`${source}:${e.line}:${e.column}: not valid TOML: ${e.message.split('\n')[0]}`] };
    }
    return { problems: [`${source}: not valid TOML: ${(e as Error).message}`] };
  }
  return validateConfig(doc);
}

export function loadConfigFile(path: string): ConfigResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message;
    return { problems: [`${path}: cannot read the config: ${why}`] };
  }
  return parseConfigText(text, path);
}

/**
 * The built-in defaults: what an empty file gives. They are a valid and safe config by themselves:
 * HTTPS on 0.0.0.0:8898 with a certificate and password generated on the agent's first start.
 */
export function defaultConfig(): Config {
  const data: Record<string, unknown> = {};
  if (!validateSchema(data)) throw new Error('built-in defaults do not match the schema');
  return data as unknown as Config;
}
