// The shipped binary runs the same whatever the environment says. Node reads a number of variables
// before any of brick's code runs (NODE_OPTIONS is already off: the SEA is built with
// execArgvExtension "none", scripts/build-binary.mjs); the rest — NODE_DEBUG, NODE_V8_COVERAGE,
// NODE_EXTRA_CA_CERTS, NODE_CHANNEL_FD, UV_THREADPOOL_SIZE, OPENSSL_CONF... — take effect during
// Node's own start-up. So the entry re-executes the binary in place (same pid, execve) without them
// before doing anything: whatever they did before that point is gone with the old image.

/** Variables that change how Node, libuv or OpenSSL run, by exact name or prefix. */
// LD_* and the glibc variables (portable15): the binary's private loader would otherwise honour the
// caller's LD_PRELOAD/LD_LIBRARY_PATH/LD_AUDIT, GLIBC_TUNABLES, MALLOC_* (its RPATH is searched
// before LD_LIBRARY_PATH, so the private libc is loaded either way; a preloaded object is gone after
// the re-exec).
const PREFIXES = ['NODE_', 'UV_', 'OPENSSL_', 'LD_', 'MALLOC_'];
const NAMES = new Set(['SSL_CERT_FILE', 'SSL_CERT_DIR', 'GLIBC_TUNABLES', 'GCONV_PATH', 'LOCPATH']);

/** The names in `env` that would change how the runtime runs; [] when the environment is clean. */
export function runtimeVariables(env: NodeJS.ProcessEnv): string[] {
  return Object.keys(env)
    .filter((k) => NAMES.has(k) || PREFIXES.some((p) => k.startsWith(p)))
    .sort();
}

/** `env` without the runtime variables. */
export function withoutRuntimeVariables(env: NodeJS.ProcessEnv): Record<string, string> {
  const drop = new Set(runtimeVariables(env));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !drop.has(k)) out[k] = v;
  return out;
}

/**
 * In the shipped binary: if the environment carries runtime variables, replace this process with a
 * clean run of the same binary and arguments (never returns then). Refuses to run at all if that
 * fails, rather than run under variables the build promised to ignore.
 */
export function reexecWithoutRuntimeVariables(): void {
  if (!runtimeVariables(process.env).length) return;
  try {
    process.execve!(process.execPath, [process.execPath, ...process.argv.slice(2)], withoutRuntimeVariables(process.env));
  } catch (e) {
    process.stderr.write(`brick: cannot re-execute without ${runtimeVariables(process.env).join(', ')}: ${(e as Error).message}; unset them\n`);
    process.exit(2);
  }
}

// The shipped binary (the bundle's banner sets __BRICK_SEA__; main.ts imports this module first, so
// this runs before any other of brick's modules): no environment variable and no signal changes how
// it runs. SIGUSR1 — with --disable-sigusr1 its default action would kill the process, and a fencer
// killed without the magic close resets the host — is ignored.
if ((globalThis as { __BRICK_SEA__?: boolean }).__BRICK_SEA__) {
  reexecWithoutRuntimeVariables();
  process.on('SIGUSR1', () => {});
}
