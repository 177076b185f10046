// The CloudStack Ovm3 module's calls (scripts/vm/hypervisor/ovm3/cloudstack.py), served with the same
// names, argument order and reply wire types, so the Java client (CloudstackPlugin.java) works
// unchanged. Each call group lives in its own file; this file is the catalogue.
import { defineMethods, type MethodDef, type ParamType } from '../../rpc/catalogue.js';
import { checkDomrSsh, domrUploadFile, execDomr, EXEC_DOMR_MAX_MS } from './domr-ssh.js';
import { checkDom0Ip, checkPort, ping } from './checks.js';
import { ovsCheckFile, ovsMkdirs, ovsUploadFile, ovsUploadSshKey } from './files.js';
import { dom0Stats, domUStats, getVncPort } from './stats.js';
import { OVM3_MODULE_VERSION, callEcho, getOvsVersion } from './module-info.js';
import { ovsControlInterface } from './control.js';
import { storageHealth, storageHealthCheck } from './storage-health.js';

/** Numbers: the Java client sends Integer (int) or Long (i8); CloudStack's own scripts send strings. */
const INT: readonly ParamType[] = ['int', 'i8', 'string'];
const SECONDS: readonly ParamType[] = ['int', 'i8', 'double', 'string'];
const TEXT: readonly ParamType[] = ['string', 'base64'];

const FILE_FAULTS = 'Faults: PATH_REFUSED (outside server.file_roots, "..", a symlink out, not absolute), INVALID_PARAMS (shell syntax, control characters), TOO_LARGE, CONFLICT (something of another type is in the way).';
const SSH_FAULTS = 'Faults: INVALID_PARAMS (not an IP inside ovm3.domr_networks; shell syntax, control characters or newlines in an argument), TOO_LARGE, TIMEOUT.';

export const methods: MethodDef[] = defineMethods([
  {
    name: 'call',
    params: [{ name: 'msg', type: 'any' }],
    returns: 'any',
    help: 'call(msg): echo test; replies msg unchanged.',
    handler: (args) => callEcho(args),
  },
  {
    name: 'get_vncport',
    params: [{ name: 'domain', type: 'string' }],
    returns: 'string',
    help:
      'get_vncport(domain): the VNC port of a running CloudStack VM, as a string (e.g. "5901"), from `virsh vncdisplay` (xenstore on Xen without libvirt). ' +
      'A name that is not a CloudStack VM name (i-2-29-VM, r-4-VM, ...) gets "0", as from the Ovm3 module. Faults: NOT_FOUND (no such domain, or no VNC display).',
    handler: (args, ctx) => getVncPort(args, ctx),
  },
  {
    name: 'exec_domr',
    params: [
      { name: 'host', type: 'string', help: 'system VM IP inside ovm3.domr_networks' },
      { name: 'cmd', type: 'string', help: 'command line for the system VM, e.g. /opt/cloud/bin/update_config.py x.json' },
      { name: 'timeout', type: SECONDS, optional: true, help: 'seconds the SSH connect may take, as in the module (default ovm3.domr_connect_timeout_s)' },
    ],
    returns: 'struct',
    timeoutMs: EXEC_DOMR_MAX_MS,
    help:
      'exec_domr(host, cmd[, timeout]): run cmd on a system VM over ssh (ovm3.ssh_user, ovm3.ssh_key, ovm3.ssh_port). ' +
      'Reply {rc: i8, out: string, err: string} (rc as <i8>, as CloudStack\'s client expects); rc 255 means ssh itself failed (err says why). ' +
      'timeout bounds the connect only; the whole command may run ovm3.domr_command_timeout_s (default 600 s); either limit firing is a TIMEOUT fault naming it. ' +
      'cmd goes to the VM\'s shell as one argument, but brick refuses ; & | ` $( ${ < > \\ and control characters/newlines in it. ' + SSH_FAULTS,
    handler: async (args, ctx) => ({ ...(await execDomr(args, ctx)) }),
  },
  {
    name: 'check_domr_port',
    params: [
      { name: 'ip', type: 'string' },
      { name: 'port', type: INT, optional: true, help: 'default ovm3.ssh_port (3922)' },
      { name: 'timeout', type: SECONDS, optional: true, help: 'seconds, default 3' },
    ],
    returns: 'boolean',
    help: 'check_domr_port(ip[, port, timeout]): true when a TCP connection to ip:port opens within timeout. Faults: INVALID_PARAMS (not an IP or host name).',
    handler: (args, ctx) => checkPort(args, ctx),
  },
  {
    name: 'check_dom0_port',
    params: [
      { name: 'ip', type: 'string' },
      { name: 'port', type: INT, optional: true, help: 'default ovm3.ssh_port (3922)' },
      { name: 'timeout', type: SECONDS, optional: true, help: 'seconds, default 3' },
    ],
    returns: 'boolean',
    help: 'check_dom0_port(ip[, port, timeout]): true when a TCP connection to ip:port opens within timeout. Faults: INVALID_PARAMS.',
    handler: (args, ctx) => checkPort(args, ctx),
  },
  {
    name: 'check_domr_ssh',
    params: [
      { name: 'ip', type: 'string' },
      { name: 'port', type: INT, optional: true },
      { name: 'timeout', type: SECONDS, optional: true, help: 'seconds, default 10' },
    ],
    returns: 'boolean',
    help: 'check_domr_ssh(ip[, port, timeout]): true when ssh to the system VM logs in and runs `true`; false when it cannot. ' + SSH_FAULTS,
    handler: (args, ctx) => checkDomrSsh(args, ctx),
  },
  {
    name: 'check_dom0_ip',
    params: [{ name: 'ip', type: 'string' }],
    returns: 'boolean',
    help: 'check_dom0_ip(ip): true when an interface of this host holds ip (from `ip -json addr`); used for the pool VIP. Faults: INVALID_PARAMS (not an IP).',
    handler: (args, ctx) => checkDom0Ip(args, ctx),
  },
  {
    name: 'ovs_domr_upload_file',
    carriesFile: true,
    params: [
      { name: 'domr', type: 'string' },
      { name: 'path', type: 'string', help: 'absolute directory on the system VM' },
      { name: 'file', type: 'string', help: 'file name' },
      { name: 'content', type: TEXT },
    ],
    returns: 'boolean',
    help: 'ovs_domr_upload_file(domr, path, file, content): copy content to path/file on a system VM with scp. Reply true; a failed copy is COMMAND_FAILED with scp\'s error. ' + SSH_FAULTS,
    handler: (args, ctx) => domrUploadFile(args, ctx),
  },
  {
    name: 'ovs_mkdirs',
    params: [
      { name: 'dir', type: 'string' },
      { name: 'mode', type: ['int', 'i8', 'string'], optional: true, help: 'default 0700 (448)' },
    ],
    returns: 'any',
    help: 'ovs_mkdirs(dir[, mode]): create dir and missing parents with mode. Reply nil when it created dir, true when dir already existed (as the Ovm3 module; the Java client depends on it). ' + FILE_FAULTS,
    handler: (args, ctx) => ovsMkdirs(args, ctx),
  },
  {
    name: 'ovs_check_file',
    params: [{ name: 'file', type: 'string' }],
    returns: 'boolean',
    help: 'ovs_check_file(file): true when file is a regular file. ' + FILE_FAULTS,
    handler: (args, ctx) => ovsCheckFile(args, ctx),
  },
  {
    name: 'ovs_upload_ssh_key',
    carriesFile: true,
    params: [
      { name: 'keyfile', type: 'string', help: 'a file name, e.g. id_rsa.cloud' },
      { name: 'content', type: TEXT },
    ],
    returns: 'boolean',
    help: 'ovs_upload_ssh_key(keyfile, content): write a key beside ovm3.ssh_key (/root/.ssh by default), mode 0600 in a 0700 directory, atomically. Reply true. ' + FILE_FAULTS,
    handler: (args, ctx) => ovsUploadSshKey(args, ctx),
  },
  {
    name: 'ovs_upload_file',
    carriesFile: true,
    params: [
      { name: 'path', type: 'string' },
      { name: 'filename', type: 'string' },
      { name: 'content', type: TEXT },
    ],
    returns: 'boolean',
    help: 'ovs_upload_file(path, filename, content): write path/filename atomically (temp file, fsync, rename), creating path (0700) if missing. New files 0644 (0600 in a .ssh directory); an existing file keeps its mode. Reply true. ' + FILE_FAULTS,
    handler: (args, ctx) => ovsUploadFile(args, ctx),
  },
  {
    name: 'ovs_dom0_stats',
    params: [{ name: 'bridge', type: 'string' }],
    returns: 'struct',
    help: 'ovs_dom0_stats(bridge): {cpu, free, total, tx, rx}, all strings: cpu percent busy over a short sample, free/total memory in bytes (xl info on Xen, /proc/meminfo elsewhere), tx/rx bytes of the bridge. Faults: NOT_FOUND (no such bridge), INVALID_PARAMS.',
    handler: (args, ctx) => dom0Stats(args, ctx),
  },
  {
    name: 'ovs_domU_stats',
    params: [{ name: 'domain', type: 'string' }],
    returns: 'struct',
    help: 'ovs_domU_stats(domain): {rd_bytes, wr_bytes, rd_ops, wr_ops, tx_bytes, rx_bytes, cputime, uptime, vcpus}, all strings (cputime and uptime in seconds; "0" where the host does not tell). From virsh domstats, or xl on Xen without libvirt. Faults: INVALID_PARAMS (not a CloudStack VM name), NOT_FOUND.',
    handler: async (args, ctx) => ({ ...(await domUStats(args, ctx)) }),
  },
  {
    name: 'get_module_version',
    params: [],
    returns: 'string',
    help: `get_module_version(): the Ovm3 module API level brick implements, "${OVM3_MODULE_VERSION}".`,
    handler: async () => OVM3_MODULE_VERSION,
  },
  {
    name: 'get_ovs_version',
    params: [],
    returns: 'string',
    help: 'get_ovs_version(): the Oracle VM Server version from /etc/ovs-release, e.g. "3.2.1". Faults: UNSUPPORTED (not an OVM host).',
    handler: () => getOvsVersion(),
  },
  {
    name: 'ping',
    params: [
      { name: 'host', type: 'string' },
      { name: 'count', type: INT, optional: true, help: '1-10, default 1' },
    ],
    returns: 'boolean',
    help: 'ping(host[, count]): true when `ping -c count` gets a reply. host must be an IP address or a host name. Faults: INVALID_PARAMS.',
    handler: (args, ctx) => ping(args, ctx),
  },
  {
    name: 'ovs_control_interface',
    params: [
      { name: 'dev', type: 'string', help: 'control bridge, e.g. control0' },
      { name: 'cidr', type: 'string', help: 'e.g. 169.254.0.0/16 (a network means its first host, 169.254.0.1)' },
    ],
    returns: 'boolean',
    help:
      'ovs_control_interface(dev, cidr): set up the link-local control network as network_setup_control does (bridge up with ARP on, the address, ' +
      'the only route for the network through dev, NOZEROCONF, no stale ifcfg-<dev>); idempotent. Reply true. ' +
      'Faults: INVALID_PARAMS, CONFLICT (dev is not a bridge), COMMAND_FAILED, VERIFY_FAILED.',
    handler: (args, ctx) => ovsControlInterface(args, ctx),
  },
  {
    name: 'check_dom0_storage_health_check',
    params: [
      { name: 'path', type: 'string', help: 'the pool to heartbeat (absolute; a trailing slash or a symlink is resolved): added as a runtime pool when it is a mount point' },
      { name: 'script', type: 'string', help: 'ignored (as by the module)' },
      { name: 'guid', type: 'string', help: 'this host\'s CloudStack guid: the heartbeat file is .hb-<guid>' },
      { name: 'timeout', type: INT },
      { name: 'interval', type: INT },
    ],
    returns: 'array',
    help:
      'check_dom0_storage_health_check(path, script, guid, timeout, interval): [running, started] as booleans. brick\'s heartbeat fencer is its own service ' +
      '(brick-fencer.service). The call starts the heartbeat on path as the module did: it adds path as a runtime pool (format ovm, fence_when "always", as ' +
      'storagehealth.py panics on a hung write whatever runs; see heartbeat_add_pool), and started is true when this call added it (running is then false until ' +
      'the fencer has verified its first heartbeat there: ask again). A path that cannot be added (not a mount point, not resolved in time) is logged, never a fault. ' +
      'running is true only when the fencer runs (its state in fencer.state_dir is fresh and the process that wrote it is alive), its host_id is guid, it guards ' +
      'path (compared after resolving symlinks and a trailing slash, in a child with a deadline), that pool is armed (a verified heartbeat seen) and fencer.action ' +
      'protects (not log-only); otherwise false and the log says why. CloudStack\'s own call passes the script directory /opt/cloudstack/bin as path, which is no ' +
      'mount: nothing is added and it gets [false, false]. Faults: INVALID_PARAMS.',
    handler: (args, ctx) => storageHealthCheck(args, ctx),
  },
  {
    name: 'check_dom0_storage_health',
    params: [
      { name: 'path', type: 'string', help: 'ignored (as by the module)' },
      { name: 'script', type: 'string', help: 'ignored (as by the module)' },
      { name: 'guid', type: 'string', help: 'the host to check' },
      { name: 'timeout', type: INT, help: 'seconds: an older heartbeat means the host is not alive' },
    ],
    returns: 'boolean',
    help:
      'check_dom0_storage_health(path, script, guid, timeout): true when host guid\'s heartbeat on the fencer\'s pools (the [[fencer.pool]] entries and the runtime pools) is younger than timeout, ' +
      'false when it is older on any pool. The file is read in a child process with a deadline (fencer.probe_timeout_s). ' +
      'Faults: NOT_READY (no pools, or the file could not be read on any pool: cannot tell), INVALID_PARAMS.',
    handler: (args, ctx) => storageHealth(args, ctx),
  },
]);
