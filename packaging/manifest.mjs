// What the legacy RPM (OVM 3.2-3.4, EL7) and the .deb (Debian 11/12, Ubuntu 20.04-24.04) install:
// ONE list, read by scripts/build-packages.mjs for both formats (the EL8/EL9 RPM is still
// packaging/rpm/brick.spec, as before; its %files lists the same files that are not legacy-only).
//
// To ship a new file (a man page, a bash completion, a python module, alert rules): add one entry
// here and, for the EL8/EL9 RPM, the same file to packaging/rpm/brick.spec. Fields:
//   src     path in the checkout (or in dist/ after the build), relative to the repository root
//   tree    like src, a directory copied whole (modes kept)
//   dest    absolute path on the host; {unitdir} is the systemd unit directory of the format
//   dir     an empty directory to own (instead of src)
//   mode    octal mode (default 0644 for files, 0755 for directories)
//   config  a config file: RPM %config(noreplace), .deb conffile (must be under /etc)
//   doc     documentation (RPM %doc)
//   only    ['legacy'] or ['deb'] to ship in one format only
export const MANIFEST = [
  { src: 'dist/portable/usr/bin/brick', dest: '/usr/bin/brick', mode: 0o755 },
  { tree: 'dist/portable/usr/lib/brick', dest: '/usr/lib/brick' },
  { tree: 'dist/portable/usr/share/doc/brick/third-party', dest: '/usr/share/doc/brick/third-party', doc: true },
  { dir: '/etc/brick', mode: 0o755 },
  { src: 'packaging/brick.toml', dest: '/etc/brick/brick.toml', mode: 0o600, config: true, only: ['deb'] },
  // Legacy hosts have no /run (OL5/OL6): the same file with state_dir under /var/run (build-packages.mjs).
  { src: 'dist/packages/.legacy/brick.toml', dest: '/etc/brick/brick.toml', mode: 0o600, config: true, only: ['legacy'] },
  { dir: '/etc/brick/hooks', mode: 0o755 },
  { dir: '/etc/brick/hooks/before_vm_start', mode: 0o755 },
  { dir: '/etc/brick/hooks/before_device_create', mode: 0o755 },
  // brick's hooking module (vdsm's hook API) for Python hooks; domain.hooking_dir puts it on their PYTHONPATH.
  { dir: '/usr/lib/brick/python', mode: 0o755 },
  { src: 'src/agent-extension/domain/hooking.py', dest: '/usr/lib/brick/python/hooking.py' },
  { dir: '/etc/brick/tls', mode: 0o700 },
  { src: 'README.md', dest: '/usr/share/doc/brick/README.md', doc: true },
  { dir: '/var/lib/brick', mode: 0o700 },
  // systemd: EL7 gets the units checked against systemd 219's directives; Debian/Ubuntu the usual ones.
  { src: 'packaging/systemd-219/brick-agent.service', dest: '{unitdir}/brick-agent.service', only: ['legacy'] },
  { src: 'packaging/systemd-219/brick-fencer.service', dest: '{unitdir}/brick-fencer.service', only: ['legacy'] },
  { src: 'packaging/systemd/brick-agent.service', dest: '{unitdir}/brick-agent.service', only: ['deb'] },
  { src: 'packaging/systemd/brick-fencer.service', dest: '{unitdir}/brick-fencer.service', only: ['deb'] },
  { src: 'packaging/tmpfiles.d/brick.conf', dest: '/usr/lib/tmpfiles.d/brick.conf' },
  // OL6 (upstart 0.6.5) and OL5 (SysV + inittab).
  { src: 'packaging/upstart/brick-agent.conf', dest: '/etc/init/brick-agent.conf', config: true, only: ['legacy'] },
  { src: 'packaging/upstart/brick-fencer.conf', dest: '/etc/init/brick-fencer.conf', config: true, only: ['legacy'] },
  { src: 'packaging/sysv/brick-agent', dest: '/etc/rc.d/init.d/brick-agent', mode: 0o755, only: ['legacy'] },
  { src: 'packaging/sysv/brick-fencer', dest: '/etc/rc.d/init.d/brick-fencer', mode: 0o755, only: ['legacy'] },
  { src: 'packaging/sysv/inittab.line', dest: '/usr/share/brick/inittab.line', only: ['legacy'] },
  { dir: '/var/run/brick', mode: 0o755, only: ['legacy'] },
  // brick(8), the bash completion, Prometheus alert rules and the Grafana dashboard (admin21).
  { src: 'packaging/man/brick.8.gz', dest: '/usr/share/man/man8/brick.8.gz' },
  { src: 'packaging/bash-completion/brick', dest: '/usr/share/bash-completion/completions/brick' },
  { dir: '/usr/share/brick', mode: 0o755 },
  { dir: '/usr/share/brick/monitoring', mode: 0o755 },
  { src: 'packaging/monitoring/brick-alerts.yml', dest: '/usr/share/brick/monitoring/brick-alerts.yml' },
  { src: 'packaging/monitoring/brick-grafana.json', dest: '/usr/share/brick/monitoring/brick-grafana.json' },
];

export const UNITDIR = { legacy: '/usr/lib/systemd/system', deb: '/lib/systemd/system' };
