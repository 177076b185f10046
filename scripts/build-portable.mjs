#!/usr/bin/env node
// Build the portable brick: dist/brick (the SEA, scripts/build-binary.mjs) given its own runtime, so
// it runs on any x86_64 Linux from OL5 (glibc 2.5) on, with no host library at all.
//
//   dist/portable/usr/bin/brick                  the SEA with PT_INTERP = /usr/lib/brick/lib/ld-linux-x86-64.so.2
//                                                and DT_RPATH = /usr/lib/brick/lib (patchelf AFTER postject:
//                                                before it, LIEF's rewrite corrupts the RUNPATH string; no strip after)
//   dist/portable/usr/lib/brick/lib/             loader + libc, libm, libdl, libpthread, libstdc++, libgcc_s, and
//                                                the libraries of the carried tools, copied from the build host's
//                                                Debian packages (dpkg says which package and version)
//   dist/portable/usr/lib/brick/bin/             brick's own ip, wdctl and coreutils (src/shared/host-tools.ts
//                                                says which and why), patched the same way
//   dist/portable/usr/share/doc/brick/third-party/<package>/copyright + SOURCES.txt
//                                                their licences and where their source is (GPL/LGPL require it)
//
// DT_RPATH (not RUNPATH: --force-rpath) is searched before LD_PRELOAD-free LD_LIBRARY_PATH, so the private libc
// is what loads whatever the caller's environment says; src/cli/runtime-env.ts re-executes without LD_* anyway.
// Children brick runs from the host (ovs-vsctl, virsh, xl, hooks) are separate programs with the host's own
// loader and libraries; run.ts gives them no LD_* variable.
//   node scripts/build-portable.mjs [--use-binary]   (--use-binary: take dist/brick as it is)
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const PRIVATE_DIR = '/usr/lib/brick';
export const PRIVATE_LIB = `${PRIVATE_DIR}/lib`;
export const PRIVATE_BIN = `${PRIVATE_DIR}/bin`;
export const LOADER = 'ld-linux-x86-64.so.2';
/** The host tools brick carries (src/shared/host-tools.ts, `carried: true`). */
export const CARRIED_TOOLS = ['ip', 'wdctl', 'chrt', 'timeout', 'dd', 'mv', 'stat', 'mkdir', 'realpath', 'sync', 'flock'];

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** The shared objects an ELF needs (ldd on the build host), as real paths, loader included. */
function neededLibs(elf) {
  const out = sh('ldd', [elf]);
  const libs = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s+(\/\S+ld-linux\S*)\s/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

/** Which Debian package holds a file, and its version. */
function debianPackageOf(path) {
  const candidates = [path, realpathSync(path)];
  // usrmerge: dpkg knows /lib/x86_64-linux-gnu/libc.so.6, the file may be found as /usr/lib/...
  for (const p of [...candidates]) {
    if (p.startsWith('/usr/lib/')) candidates.push(p.slice(4));
    if (p.startsWith('/usr/bin/') || p.startsWith('/usr/sbin/')) candidates.push(p.slice(4));
    if (p.startsWith('/lib/') || p.startsWith('/bin/') || p.startsWith('/sbin/')) candidates.push('/usr' + p);
  }
  for (const p of candidates) {
    try {
      const pkg = sh('dpkg-query', ['-S', p]).split(':')[0].trim();
      const version = sh('dpkg-query', ['-W', '-f=${Version}', pkg]).trim();
      const source = sh('dpkg-query', ['-W', '-f=${source:Package} ${source:Version}', pkg]).trim().split(' ');
      return { pkg: pkg.replace(/:amd64$/, ''), version, source: source[0], sourceVersion: source[1] || version };
    } catch {
      /* next candidate */
    }
  }
  throw new Error(`${path}: no Debian package holds it; the private runtime takes files from Debian packages only`);
}

function hostTool(name) {
  for (const d of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) if (existsSync(`${d}/${name}`)) return `${d}/${name}`;
  throw new Error(`${name}: not on the build host (scripts/install-build-deps.sh installs it)`);
}

function patch(elf) {
  // AFTER postject for brick itself; never strip afterwards.
  sh('patchelf', ['--set-interpreter', `${PRIVATE_LIB}/${LOADER}`, '--set-rpath', PRIVATE_LIB, '--force-rpath', elf]);
}

export async function buildPortable({ useBinary = false, quiet = false, out = join(root, 'dist', 'portable') } = {}) {
  const log = (s) => quiet || console.log(`build-portable: ${s}`);
  const t0 = performance.now();
  const bin = join(root, 'dist', 'brick');
  if (!useBinary || !existsSync(bin)) {
    const { buildBinary } = await import('./build-binary.mjs');
    await buildBinary({ quiet: true });
  }
  mkdirSync(dirname(out), { recursive: true });
  const work = `${out}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  const libDir = join(work, PRIVATE_LIB);
  const binDir = join(work, PRIVATE_BIN);
  const docDir = join(work, 'usr/share/doc/brick/third-party');
  mkdirSync(libDir, { recursive: true });
  mkdirSync(binDir, { recursive: true });
  mkdirSync(join(work, 'usr/bin'), { recursive: true });
  mkdirSync(docDir, { recursive: true });
  try {
    const packages = new Map(); // pkg -> {version, source, sourceVersion, files[]}
    const note = (path, as) => {
      const p = debianPackageOf(path);
      const e = packages.get(p.pkg) ?? { ...p, files: [] };
      e.files.push(as);
      packages.set(p.pkg, e);
    };
    const libs = new Set();
    const tools = CARRIED_TOOLS.map((t) => hostTool(t));
    for (const elf of [bin, ...tools]) for (const l of neededLibs(elf)) libs.add(l);
    for (const l of libs) {
      const name = basename(l);
      copyFileSync(realpathSync(l), join(libDir, name));
      // The loader must be executable (the kernel opens PT_INTERP like a program); libraries need not.
      chmodSync(join(libDir, name), name === LOADER ? 0o755 : 0o644);
      note(l, `${PRIVATE_LIB}/${name}`);
    }
    for (const t of tools) {
      const dest = join(binDir, basename(t));
      copyFileSync(realpathSync(t), dest);
      chmodSync(dest, 0o755);
      patch(dest);
      note(t, `${PRIVATE_BIN}/${basename(t)}`);
    }
    const brick = join(work, 'usr/bin/brick');
    copyFileSync(bin, brick);
    chmodSync(brick, 0o755);
    patch(brick);

    // Licences and source notes, one directory per Debian package.
    const index = [
      'Third-party software in brick\'s private runtime (/usr/lib/brick)',
      '',
      'brick itself is Apache-2.0. The files below are unmodified binaries from Debian packages (the',
      'loader and libraries, and a few tools brick carries for hosts whose own are too old; see',
      'src/shared/host-tools.ts). Only their ELF interpreter and RPATH were changed (patchelf), to',
      `point at ${PRIVATE_LIB}. Each package's licence is in its directory here (Debian's copyright file).`,
      '',
      'Source: the complete corresponding source of each package is Debian\'s source package of the',
      'version named below, kept permanently at https://snapshot.debian.org/package/<source>/<version>/',
      '(also: apt-get source <source>=<version> on Debian 12). The brick project will also provide it on',
      'request for at least three years from the release of this package.',
      '',
    ];
    for (const [pkg, e] of [...packages].sort()) {
      const dir = join(docDir, pkg);
      mkdirSync(dir, { recursive: true });
      const copyright = `/usr/share/doc/${pkg}/copyright`;
      if (!existsSync(copyright)) throw new Error(`${copyright}: missing; cannot ship ${pkg} without its licence`);
      copyFileSync(copyright, join(dir, 'copyright'));
      const src = `https://snapshot.debian.org/package/${e.source}/${encodeURIComponent(e.sourceVersion)}/`;
      writeFileSync(
        join(dir, 'SOURCES.txt'),
        `Debian binary package ${pkg} ${e.version} (source package ${e.source} ${e.sourceVersion}).\nSource: ${src}\nFiles in brick:\n${e.files.map((f) => `  ${f}`).join('\n')}\n`,
      );
      index.push(`${pkg} ${e.version} (source ${e.source} ${e.sourceVersion}): ${e.files.join(', ')}`);
      index.push(`  ${src}`);
    }
    writeFileSync(join(docDir, 'README.txt'), index.join('\n') + '\n');

    // It must still be brick, and run with nothing but its own files.
    // (in a chroot of the staged tree: the interpreter path is absolute, /usr/lib/brick/lib/...)
    const v = sh('/usr/sbin/chroot', [work, '/usr/bin/brick', '--version'], { env: { PATH: '/nonexistent' } });
    if (!v.startsWith('brick ')) throw new Error(`the patched binary answers --version with ${JSON.stringify(v)}`);
    const interp = sh('patchelf', ['--print-interpreter', brick]).trim();
    if (interp !== `${PRIVATE_LIB}/${LOADER}`) throw new Error(`interpreter is ${interp}`);

    rmSync(out, { recursive: true, force: true });
    renameSync(work, out);
    const size = (p) => statSync(p).size;
    let runtimeBytes = 0;
    for (const l of libs) runtimeBytes += size(join(out, PRIVATE_LIB, basename(l)));
    let toolBytes = 0;
    for (const t of tools) toolBytes += size(join(out, PRIVATE_BIN, basename(t)));
    const info = {
      out,
      brickBytes: size(join(out, 'usr/bin/brick')),
      libBytes: runtimeBytes,
      toolBytes,
      packages: Object.fromEntries([...packages].map(([k, e]) => [k, e.version])),
    };
    writeFileSync(join(dirname(out), 'portable.json'), JSON.stringify(info, null, 2) + '\n');
    log(`${out}: brick ${(info.brickBytes / 1048576).toFixed(1)} MiB + libraries ${(runtimeBytes / 1048576).toFixed(1)} MiB + tools ${(toolBytes / 1048576).toFixed(1)} MiB from ${packages.size} Debian packages, ${Math.round(performance.now() - t0)} ms`);
    return info;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildPortable({ useBinary: process.argv.includes('--use-binary') }).catch((e) => {
    console.error(`build-portable: ${e.message}`);
    process.exit(1);
  });
}
