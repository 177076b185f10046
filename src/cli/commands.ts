// The command line's one description: each command with its options, what it does and its exit
// codes. The global usage, each command's --help, the man page brick(8) (scripts/man-page.ts) and
// the bash completion are all made from this table, so they cannot disagree with the parser
// (main.ts parses each command's options from the same entries).

export interface OptionDoc {
  name: string;
  short?: string;
  /** The value's placeholder (FILE, URL, S); absent for a flag. */
  arg?: string;
  help: string;
  /** Values the completion offers. */
  choices?: readonly string[];
  /** The completion offers file names. */
  file?: boolean;
}

export interface CommandDoc {
  name: string;
  /** Positional arguments as the synopsis shows them. */
  args?: string;
  summary: string;
  /** Paragraphs for --help and the man page. */
  description: string[];
  options: readonly OptionDoc[];
  /** Exit codes this command uses beyond 0, 1 and 2. */
  exits?: readonly number[];
}

const CONFIG: OptionDoc = { name: 'config', short: 'c', arg: 'FILE', help: 'the config file (default /etc/brick/brick.toml)', file: true };
const HELP: OptionDoc = { name: 'help', short: 'h', help: 'print this help and exit' };
const LOG_FORMAT: OptionDoc = {
  name: 'log-format',
  arg: 'json|pretty',
  help: 'json: one JSON line per event with the journald priority prefix (default); pretty: for a terminal',
  choices: ['json', 'pretty'],
};
const LOG_LEVEL: OptionDoc = {
  name: 'log-level',
  arg: 'LEVEL',
  help: 'the lowest level logged: trace, debug, info (default), warn, error, fatal or silent',
  choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
};
const JSON_OUT: OptionDoc = { name: 'json', help: 'print the report as JSON instead of lines of text' };

export const EXIT_CODES: ReadonlyArray<{ code: number; meaning: string }> = [
  { code: 0, meaning: 'ok; for status and doctor: all well' },
  { code: 1, meaning: 'a user error: bad arguments, a bad or missing config (one line per problem, no stack trace)' },
  { code: 2, meaning: 'an internal failure in brick (a bug)' },
  { code: 3, meaning: 'status, doctor: degraded: something needs a look (a late or unverified pool, the agent not answering, a check warned) but the host is protected' },
  { code: 4, meaning: 'status, doctor: not protected: the fencer is not running, a pool expired, the host fenced, no pool is guarded, or a check failed' },
  { code: 5, meaning: 'call: the agent answered with an XML-RPC fault' },
  { code: 6, meaning: 'call: the agent refused the user or password (HTTP 401)' },
  { code: 7, meaning: 'call: the agent could not be reached or did not answer XML-RPC (connection refused, timeout, TLS, another HTTP status)' },
];

export const EXIT = { OK: 0, USER: 1, INTERNAL: 2, DEGRADED: 3, NOT_PROTECTED: 4, FAULT: 5, UNAUTHORIZED: 6, UNREACHABLE: 7 } as const;

export const COMMANDS: readonly CommandDoc[] = [
  {
    name: 'serve',
    summary: 'run the XML-RPC agent extension',
    description: [
      'Serves XML-RPC on POST / and /RPC2 at server.listen (HTTPS with server.tls_cert and server.tls_key, HTTP Basic auth), GET /healthz and GET /metrics. Runs in the foreground until SIGTERM or SIGINT; brick-agent.service runs it.',
    ],
    options: [CONFIG, LOG_FORMAT, LOG_LEVEL, HELP],
  },
  {
    name: 'fencer',
    summary: 'run the NFS heartbeat watchdog',
    description: [
      'Probes each [[fencer.pool]] and each runtime pool the orchestrator added (fencer.runtime_pools_file, read on every tick) every probe_interval_s, pets the watchdog while every armed pool is verified, and fences the host (fencer.action) when a used pool has had no verified heartbeat for fence_after_s. Runs in the foreground; brick-fencer.service runs it. A clean stop (SIGTERM, SIGINT) disarms the watchdog.',
    ],
    options: [CONFIG, LOG_FORMAT, LOG_LEVEL, HELP],
  },
  {
    name: 'status',
    summary: 'what the agent and the fencer are doing, with an exit code a monitoring check can use',
    description: [
      'Reads the fencer\'s state file and the fence marker (local disk; never a pool) and asks the agent one authenticated call (system.listMethods) with the config\'s credentials: "reachable" means it answered.',
      'Exit 0: the fencer runs, guards at least one pool, every pool is healthy, the agent answers. Exit 3: degraded (a late, unverified or idle-expired pool, stuck probes, the agent not answering, no watchdog, a fence marker from an earlier reset). Exit 4: not protected (the fencer is not running, it fenced, a pool expired, a pool VMs use never verified within the start-up window, no pool is guarded, or action = "log-only").',
    ],
    options: [CONFIG, JSON_OUT, { name: 'timeout', arg: 'S', help: 'deadline for the call to the agent, in seconds (default 5)' }, HELP],
    exits: [3, 4],
  },
  {
    name: 'doctor',
    summary: 'check that this host can do what the config asks',
    description: [
      'One line per check, ok, warn or fail, each warn and fail with the fix: the config and its timing rule, each pool (mounted, NFS, hard mount, its options), the watchdog device (driver, timeout, nowayout, not on a nodev mount), sysrq (kernel.sysrq, the trigger), state_dir and marker_dir (local, writable, state_dir in memory, marker_dir not, not writable by other users, and writable under the sandbox of brick-fencer.service: ProtectSystem=, ReadOnlyPaths=, InaccessiblePaths=, ProtectHome=, PrivateTmp=), the directory of runtime_pools_file when it is not marker_dir (not writable by other users) and domain.hooks_dir (not noexec), the host tools brick runs and their versions, libvirt or xl, Open vSwitch and DPDK, the agent with the configured credentials, the clock. Reads only; changes nothing.',
      'Exit 0: every check ok. Exit 3: a warning. Exit 4: a check failed.',
    ],
    options: [CONFIG, JSON_OUT, HELP],
    exits: [3, 4],
  },
  {
    name: 'check-config',
    summary: 'validate the config',
    description: [
      'Exit 0 when the config is valid, printing a "warning:" line on stderr for each setting that protects less than it seems (no pool with a resetting action, log-only, no watchdog, plain HTTP off loopback); exit 1 with one line per problem, naming the key.',
    ],
    options: [CONFIG, HELP],
  },
  {
    name: 'call',
    args: 'METHOD [ARG...]',
    summary: 'call one XML-RPC method on the agent and print the result',
    description: [
      'Each ARG is JSON when it parses as JSON (42, true, null, {"mtu":9000}, [1,2]) and a string otherwise. The result is printed as JSON (base64 as its text, dates as ISO 8601); a string reply of system.methodHelp is printed as text. Without --url, the URL, user and password come from the config (--config, else /etc/brick/brick.toml): server.listen, server.user and server.password_file, and its tls_cert is trusted.',
      'Exit 5: the reply is a fault, printed as one line "fault CODE (NAME): message" on stderr. Exit 6: HTTP 401, the user or password was refused. Exit 7: no answer (connection refused, timeout, TLS error, another HTTP status).',
    ],
    options: [
      { name: 'url', arg: 'URL', help: 'the agent, e.g. https://10.0.0.5:8898/ (user:password@ in it is used for auth)' },
      { name: 'user', short: 'u', arg: 'U', help: 'HTTP Basic user (default: server.user, oracle)' },
      { name: 'password-file', short: 'p', arg: 'F', help: 'file holding the password (default: server.password_file)', file: true },
      CONFIG,
      { name: 'insecure', short: 'k', help: 'do not verify the agent\'s TLS certificate' },
      { name: 'timeout', short: 't', arg: 'S', help: 'deadline for the call in seconds (default 120)' },
      HELP,
    ],
    exits: [5, 6, 7],
  },
  {
    name: 'methods',
    summary: 'list the XML-RPC methods brick serves, one line each',
    description: ['Read from brick\'s own method catalogue: no agent is needed.'],
    options: [{ name: 'names', help: 'only the names, one per line (for scripts and completion)' }, HELP],
  },
  {
    name: 'help',
    args: '[METHOD|COMMAND]',
    summary: 'help on a method (its arguments, reply and faults) or a command',
    description: ['With a method name: its call form, what it does, each argument, the reply and the faults, from the catalogue. With a command name: that command\'s --help. Alone: the usage.'],
    options: [],
  },
  {
    name: 'version',
    summary: 'print the version, the Node runtime and the build commit (also brick --version)',
    description: [],
    options: [],
  },
];

export function command(name: string): CommandDoc | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export function optionSynopsis(o: OptionDoc): string {
  const flag = o.short ? `-${o.short}|--${o.name}` : `--${o.name}`;
  return `[${flag}${o.arg ? ' ' + o.arg : ''}]`;
}

export function synopsis(c: CommandDoc): string {
  return ['brick', c.name, ...c.options.filter((o) => o.name !== 'help').map(optionSynopsis), ...(c.args ? [c.args] : [])].join(' ');
}

export function usage(): string {
  const lines = ['usage:'];
  for (const c of COMMANDS) lines.push('  ' + synopsis(c));
  lines.push('  brick --version');
  lines.push('', 'brick COMMAND --help describes a command and its options; brick help METHOD an XML-RPC method.');
  lines.push('Exit codes: ' + EXIT_CODES.map((e) => String(e.code)).join(', ') + ' (brick --help lists them).');
  return lines.join('\n');
}

/** `brick --help`: the usage, each command's summary and the exit codes. */
export function longUsage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    usage(),
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'exit codes:',
    ...EXIT_CODES.map((e) => `  ${e.code}  ${e.meaning}`),
  ].join('\n');
}

function optionLine(o: OptionDoc): string {
  return `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.arg ? ' ' + o.arg : ''}`;
}

/** `brick COMMAND --help`. */
export function commandHelp(c: CommandDoc): string {
  const out = [`usage: ${synopsis(c)}`, '', c.summary.charAt(0).toUpperCase() + c.summary.slice(1) + '.'];
  for (const p of c.description) out.push('', p);
  if (c.options.length) {
    const w = Math.max(...c.options.map((o) => optionLine(o).length));
    out.push('', 'options:');
    for (const o of c.options) out.push(`  ${optionLine(o).padEnd(w)}  ${o.help}`);
  }
  const exits = [0, 1, 2, ...(c.exits ?? [])];
  out.push('', 'exit codes:');
  for (const e of EXIT_CODES.filter((x) => exits.includes(x.code))) out.push(`  ${e.code}  ${e.meaning}`);
  return out.join('\n');
}

/** The parseArgs options of a command, from its docs. */
export function parseOptions(c: CommandDoc): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  const o: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const d of c.options) o[d.name] = { type: d.arg ? 'string' : 'boolean', ...(d.short ? { short: d.short } : {}) };
  return o;
}
