// Bench (not a test): one 10 MB ovs_upload_file(path, filename, content) over XML-RPC — the call
// CloudStack's Ovm3 module uses to push scripts and templates' metadata — against the binary
// (dist/brick serve, a fresh process per run), beside Python's SimpleXMLRPCServer serving a function
// that writes the same file (what the Oracle agent does, minus its checks). Figures: wall time from
// the first byte sent to the reply, and each server's peak RSS (VmHWM) after the call. The written
// file is checked (size and SHA-256) so a fast wrong answer cannot pass. Figures are printed only.
//   node --import tsx bench/upload.ts [runs]
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evict, writeFigures, type Figure } from './lib.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.env.BRICK_BIN || join(root, 'dist', 'brick');
const RUNS = Number(process.argv[2] ?? 5);
const SIZE = 10 * 1024 * 1024;

const PY_SERVER = String.raw`
import os, sys
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler
class H(SimpleXMLRPCRequestHandler):
    rpc_paths = ('/', '/RPC2')
    def log_message(self, *a): pass
def ovs_upload_file(path, filename, content):
    os.makedirs(path, 0o700, exist_ok=True)
    tmp = os.path.join(path, '.' + filename + '.tmp')
    with open(tmp, 'w') as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(path, filename))
    return True
s = SimpleXMLRPCServer(('127.0.0.1', 0), requestHandler=H, allow_none=True, logRequests=False)
s.register_function(ovs_upload_file)
print(s.server_address[1], flush=True)
s.serve_forever()
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function kib(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** utime + stime of a process, ms (USER_HZ 100). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/**
 * Wait until a server has settled after its start (no CPU used for 1 s; at most 20 s): brick serve
 * checks its host tools a second after it listens, one child process each, which would otherwise
 * land in whichever call is being measured.
 */
async function settled(pid: number): Promise<void> {
  const end = Date.now() + 20_000;
  let last = cpuMs(pid);
  let quiet = 0;
  while (quiet < 4 && Date.now() < end) {
    await sleep(250);
    const now = cpuMs(pid);
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}

function post(port: number, body: Buffer, auth?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'text/xml', 'content-length': body.length };
    if (auth) headers.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
    const req = request({ host: '127.0.0.1', port, path: '/RPC2', method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Start a server, wait for its port; brick logs JSON with its URL, the Python server prints the port. */
function start(cmd: string, args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start within 30 s`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /"url":"http:\/\/[^"]*:(\d+)/.exec(buf) ?? /^(\d+)\n/.exec(buf);
      if (m) {
        clearTimeout(timer);
        buf = '';
        resolve({ proc, port: Number(m[1]) });
      }
      if (buf.length > 100_000) buf = buf.slice(-1000);
    });
    proc.once('exit', (code) => reject(new Error(`${cmd} exited ${code} before listening`)));
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(5000).then(() => proc.kill('SIGKILL'))]);
}

async function main(): Promise<void> {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: npm run build:binary`);
  // As a binary installed from a package is cached, not as build-binary's write left it (lib.ts
  // evict): its file-backed pages are part of every RSS figure here (a binary fresh from the build,
  // in large folios, showed 10-14 MiB more before and after the call).
  evict(bin);
  const dir = mkdtempSync(join(tmpdir(), 'brick-upload-'));
  try {
    // 10 MB of printable text (a script or an ISO's metadata would be text too): no XML escaping.
    const content = randomBytes(SIZE).toString('base64').slice(0, SIZE);
    const sha = createHash('sha256').update(content).digest('hex');
    const toml = join(dir, 'brick.toml');
    writeFileSync(toml, `[server]\nlisten = "127.0.0.1:0"\ntls_cert = ""\ntls_key = ""\npassword = "bench"\nfile_roots = ["${dir}"]\n[fencer]\nwatchdog_device = ""\n`);
    const call = (target: string) =>
      Buffer.from(
        `<?xml version="1.0"?><methodCall><methodName>ovs_upload_file</methodName><params>` +
          `<param><value><string>${target}</string></value></param><param><value><string>upload.bin</string></value></param>` +
          `<param><value><string>${content}</string></value></param></params></methodCall>`,
      );
    const res: Record<'brick' | 'python', { ms: number[]; warmMs: number[]; peakMiB: number[]; baseMiB: number[]; cpu: number[]; warmCpu: number[] }> = {
      brick: { ms: [], warmMs: [], peakMiB: [], baseMiB: [], cpu: [], warmCpu: [] },
      python: { ms: [], warmMs: [], peakMiB: [], baseMiB: [], cpu: [], warmCpu: [] },
    };
    for (let i = 0; i < RUNS; i++) {
      for (const who of ['brick', 'python'] as const) {
        const target = join(dir, `${who}-${i}`);
        const body = call(target);
        const s = who === 'brick' ? await start(bin, ['serve', '--config', toml]) : await start('python3', ['-c', PY_SERVER]);
        try {
          await sleep(300);
          await settled(s.proc.pid!);
          const base = kib(s.proc.pid!, 'VmRSS');
          const c0 = cpuMs(s.proc.pid!);
          const t0 = performance.now();
          const r = await post(s.port, body, who === 'brick' ? 'oracle:bench' : undefined);
          const ms = performance.now() - t0;
          res[who].cpu.push(cpuMs(s.proc.pid!) - c0);
          if (r.status !== 200 || !/<boolean>1<\/boolean>/.test(r.text)) throw new Error(`${who}: ovs_upload_file answered HTTP ${r.status}: ${r.text.slice(0, 300)}`);
          const written = readFileSync(join(target, 'upload.bin'));
          if (written.length !== SIZE || createHash('sha256').update(written).digest('hex') !== sha) throw new Error(`${who}: the uploaded file differs from what was sent`);
          res[who].ms.push(ms);
          res[who].peakMiB.push(kib(s.proc.pid!, 'VmHWM') / 1024);
          // The same call again on the now warm server (JIT, heap grown).
          const c1 = cpuMs(s.proc.pid!);
          const t1 = performance.now();
          const r2 = await post(s.port, body, who === 'brick' ? 'oracle:bench' : undefined);
          res[who].warmMs.push(performance.now() - t1);
          res[who].warmCpu.push(cpuMs(s.proc.pid!) - c1);
          if (r2.status !== 200 || !/<boolean>1<\/boolean>/.test(r2.text)) throw new Error(`${who}: second ovs_upload_file answered HTTP ${r2.status}`);
          res[who].baseMiB.push(base / 1024);
        } finally {
          await stop(s.proc);
          rmSync(target, { recursive: true, force: true });
        }
      }
    }
    const figures: Figure[] = [
      {
        id: 'xmlrpc.upload_10mb.ms',
        title: 'ovs_upload_file, 10 MB string, one call (fresh server)',
        unit: 'ms',
        better: 'lower',
        brick: { name: 'dist/brick serve', samples: res.brick.ms },
        peer: { name: 'python SimpleXMLRPCServer (open/write/fsync/rename)', samples: res.python.ms },
      },
      {
        id: 'xmlrpc.upload_10mb.warm_ms',
        title: 'ovs_upload_file, 10 MB string, the same call again on the same server',
        unit: 'ms',
        better: 'lower',
        brick: { name: 'dist/brick serve', samples: res.brick.warmMs },
        peer: { name: 'python SimpleXMLRPCServer (open/write/fsync/rename)', samples: res.python.warmMs },
      },
      {
        id: 'xmlrpc.upload_10mb.cpu_ms',
        title: 'ovs_upload_file, 10 MB string: server CPU (user + system) for the call, fresh server',
        unit: 'ms',
        better: 'lower',
        brick: { name: 'dist/brick serve', samples: res.brick.cpu },
        peer: { name: 'python SimpleXMLRPCServer (open/write/fsync/rename)', samples: res.python.cpu },
      },
      {
        id: 'xmlrpc.upload_10mb.warm_cpu_ms',
        title: 'ovs_upload_file, 10 MB string: server CPU (user + system) for the call, the same call again',
        unit: 'ms',
        better: 'lower',
        brick: { name: 'dist/brick serve', samples: res.brick.warmCpu },
        peer: { name: 'python SimpleXMLRPCServer (open/write/fsync/rename)', samples: res.python.warmCpu },
      },
      {
        id: 'xmlrpc.upload_10mb.peak_rss_mib',
        title: 'peak RSS (VmHWM) of the server after the first 10 MB ovs_upload_file',
        unit: 'MiB',
        better: 'lower',
        brick: { name: 'dist/brick serve', samples: res.brick.peakMiB },
        peer: { name: 'python SimpleXMLRPCServer', samples: res.python.peakMiB },
        note: `RSS before the call: brick ${res.brick.baseMiB.map((x) => x.toFixed(0)).join(', ')} MiB, python ${res.python.baseMiB.map((x) => x.toFixed(0)).join(', ')} MiB`,
      },
    ];
    writeFigures('xmlrpc-upload', figures, {
      notes: [
        `${RUNS} runs, brick and Python interleaved, a fresh server process per run, each measured once it has settled after its start (no CPU for 1 s: brick checks its host tools in the background a second after listening); the file is verified (size, SHA-256) after every call`,
        'brick checks HTTP Basic auth, file_roots, and writes atomically (temp file, fsync, rename) under a per-file lock; the Python function does the same write without the checks',
      ],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`upload: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
