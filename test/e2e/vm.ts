// Runs one guest under qemu (TCG: KVM hangs on the build machine) and turns its serial console into
// events. The guest prints "E2E <epoch> <event> <text>" lines (test/e2e/guest/lib.sh); each event is
// stamped with the host's clock when its line arrives. -no-reboot makes any reset (sysrq b, softdog,
// panic) end qemu, so the host times a fence as "qemu exited" and tells it from a clean end by the
// missing "end" event.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { CACHE, type GuestImage } from './image.js';

export interface VmEvent {
  /** Host wall clock (ms since the epoch) when the line arrived. */
  hostMs: number;
  /** The guest's wall clock (ms since the epoch) when it printed the line. */
  guestMs: number;
  event: string;
  text: string;
}

export interface VmExit {
  hostMs: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The guest printed "end": it powered off by itself rather than being reset. */
  clean: boolean;
}

export interface VmOptions {
  scenario: string;
  /** Extra e2e.KEY=VALUE kernel arguments the scenario reads with `arg KEY`. */
  args?: Record<string, string | number>;
  memMb?: number;
  /** Add a virtio NIC (user-mode network, eth0 in the guest). */
  nic?: boolean;
  /** Kill qemu after this long no matter what (ms). */
  hardLimitMs: number;
}

const nowMs = () => performance.timeOrigin + performance.now();

export class Vm {
  readonly events: VmEvent[] = [];
  /** Kernel console lines with their printk timestamps (seconds since boot, the guest's clock). */
  readonly kernel: { uptimeS: number; text: string }[] = [];
  /** Every console line (the fencer's JSON log included), as it arrived. */
  readonly lines: string[] = [];
  readonly logPath: string;
  readonly exited: Promise<VmExit>;
  readonly startedMs = nowMs();
  private child: ChildProcess;
  private waiters: { pred: (e: VmEvent) => boolean; resolve: (e: VmEvent) => void }[] = [];
  private log: WriteStream;
  private exit?: VmExit;
  private tail = '';

  constructor(image: GuestImage, readonly opts: VmOptions) {
    const logs = join(CACHE, 'logs');
    mkdirSync(logs, { recursive: true });
    this.logPath = join(logs, `${opts.scenario}-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.log`);
    this.log = createWriteStream(this.logPath);
    const append = [
      'console=ttyS0', 'loglevel=3', 'panic=-1', 'nokaslr', 'mitigations=off', 'tsc=reliable', 'no_timer_check',
      `e2e.scenario=${opts.scenario}`,
      ...Object.entries(opts.args ?? {}).map(([k, v]) => {
        if (!/^[a-z0-9_]+$/.test(k) || /\s/.test(String(v))) throw new Error(`bad e2e kernel argument ${k}=${v}`);
        return `e2e.${k}=${v}`;
      }),
    ].join(' ');
    const args = [
      '-accel', 'tcg', '-cpu', 'max', '-smp', '1', '-m', String(opts.memMb ?? 1024),
      '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
      '-kernel', image.kernel, '-initrd', image.initrd, '-append', append,
    ];
    if (opts.nic) args.push('-netdev', 'user,id=n0,restrict=on,ipv6=off', '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56');
    this.child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (b: Buffer) => this.onData(b));
    this.child.stderr!.on('data', (b: Buffer) => this.log.write(`[qemu stderr] ${b}`));
    const limit = setTimeout(() => {
      this.log.write(`\n[harness] hard limit ${opts.hardLimitMs} ms reached: killing qemu\n`);
      this.child.kill('SIGKILL');
    }, opts.hardLimitMs);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        const hostMs = nowMs();
        clearTimeout(limit);
        if (this.tail) this.onLine(this.tail, hostMs);
        this.exit = { hostMs, code, signal, clean: this.events.some((e) => e.event === 'end') };
        this.log.end(`\n[harness] qemu exited code=${code} signal=${signal} after ${((hostMs - this.startedMs) / 1000).toFixed(2)} s\n`);
        resolve(this.exit);
      });
    });
  }

  private onData(b: Buffer): void {
    const at = nowMs();
    this.log.write(b);
    const s = this.tail + b.toString('utf8');
    const lines = s.split(/\r?\n/);
    this.tail = lines.pop() ?? '';
    for (const l of lines) this.onLine(l, at);
  }

  private onLine(line: string, at: number): void {
    this.lines.push(line.replace(/\r/g, ''));
    const k = /^\[\s*(\d+\.\d+)\] (.*)$/.exec(line.replace(/\r/g, ''));
    if (k) this.kernel.push({ uptimeS: Number(k[1]), text: k[2] });
    const m = /E2E (\d+\.\d+) (\S+) ?(.*)$/.exec(line.replace(/\r/g, ''));
    if (!m) return;
    const e: VmEvent = { hostMs: at, guestMs: Number(m[1]) * 1000, event: m[2], text: m[3].trim() };
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (w.pred(e)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }

  /** The first event (already seen or coming) matching; rejects on timeout or when qemu ends first. */
  waitFor(event: string | ((e: VmEvent) => boolean), timeoutMs: number): Promise<VmEvent> {
    const pred = typeof event === 'string' ? (e: VmEvent) => e.event === event : event;
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (e: VmEvent) => (clearTimeout(t), resolve(e)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`guest event ${typeof event === 'string' ? event : 'matching'} not seen within ${timeoutMs} ms; console: ${this.logPath}`));
      }, timeoutMs);
      this.waiters.push(w);
      void this.exited.then((x) => {
        if (!this.waiters.includes(w)) return;
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(t);
        reject(new Error(`qemu exited (code ${x.code}, ${x.clean ? 'clean' : 'reset'}) before guest event ${typeof event === 'string' ? event : 'matching'}; console: ${this.logPath}`));
      });
    });
  }

  /** The printk timestamp (seconds since boot) of the first kernel line matching. */
  kernelUptime(re: RegExp): number | undefined {
    return this.kernel.find((l) => re.test(l.text))?.uptimeS;
  }

  /** Events named "fail" (guest-side checks that failed). */
  failures(): string[] {
    return this.events.filter((e) => e.event === 'fail').map((e) => e.text);
  }

  data(name: string): string | undefined {
    const e = this.events.find((x) => x.event === 'data' && x.text.startsWith(name + ' '));
    return e?.text.slice(name.length + 1);
  }

  kill(): void {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}
