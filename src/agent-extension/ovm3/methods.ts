// The CloudStack Ovm3 module's calls (scripts/vm/hypervisor/ovm3/cloudstack.py), served with the same
// names, argument order and reply wire types, so the Java client (CloudstackPlugin.java) works
// unchanged. Each call group lives in its own file; this file is the catalogue.
import type { MethodDef } from '../../rpc/catalogue.js';
import { method, optional, param } from '../../rpc/params.js';
import { Any, HostOrIp, IfName, IpLiteral, Plain, Port, intIn, seconds } from '../../rpc/formats.js';
import { ControlCidr } from '../../network/bridge/control0.js';
import { checkDomrSsh, domrUploadFile, execDomr, EXEC_DOMR_MAX_MS, MAX_CMD_BYTES, RemoteDir, RemoteFileName } from './domr-ssh.js';
import { checkDom0Ip, checkPort, ping } from './checks.js';
import { Content, FileMode, FileName, MAX_FILE_BYTES, MAX_KEY_BYTES, PathText, ovsCheckFile, ovsMkdirs, ovsUploadFile, ovsUploadSshKey } from './files.js';
import { VmName, dom0Stats, domUStats, getVncPort } from './stats.js';
import { OVM3_MODULE_VERSION, getOvsVersion } from './module-info.js';
import { ovsControlInterface } from './control.js';
import { Guid, storageHealth, storageHealthCheck } from './storage-health.js';

/**
 * check_domr_port and check_dom0_port: the module has both, the same TCP connect. Their replies
 * differ because CloudStack reads them differently (reference/cloudstack.md §3.1, §3.2):
 * domrCheckPort casts the reply to Boolean (nil would break it), while dom0CheckPort reads it
 * nullIsFalse, where every non-nil reply, <boolean>0</boolean> included, means reachable. So
 * check_dom0_port answers a closed port with nil.
 */
function portCheck(name: string, closed: 'false' | 'nil', faults: string): MethodDef {
  return method({
    name,
    params: [param('ip', HostOrIp), optional('port', Port, 'default ovm3.ssh_port (3922)'), optional('timeout', seconds(600), 'seconds, default 3')],
    returns: closed === 'nil' ? 'any' : 'boolean',
    help:
      closed === 'nil'
        ? `${name}(ip[, port, timeout]): true when a TCP connection to ip:port opens within timeout, nil when it does not ` +
          `(CloudStack's dom0CheckPort reads every non-nil reply, false included, as reachable). Faults: ${faults}.`
        : `${name}(ip[, port, timeout]): true when a TCP connection to ip:port opens within timeout, false when it does not. Faults: ${faults}.`,
    handler: async (args, ctx) => ((await checkPort(args, ctx)) ? true : closed === 'nil' ? null : false),
  });
}
/** Seconds CloudStack passes to the storage checks. */
const CHECK_SECONDS = intIn(1, 86400);
/** The module's two storage checks take (path, script, guid, ...): script is ignored, as by the module. */
const storageArgs = (pathHelp: string, guidHelp: string) =>
  [param('path', PathText, pathHelp), param('script', Plain(256), 'ignored (as by the module)'), param('guid', Guid, guidHelp)] as const;

const FILE_FAULTS = 'Faults: PATH_REFUSED (outside server.file_roots, "..", a symlink out, not absolute), INVALID_PARAMS (shell syntax, control characters), TOO_LARGE, CONFLICT (something of another type is in the way).';
const SSH_FAULTS = 'Faults: INVALID_PARAMS (not an IP inside ovm3.domr_networks; shell syntax, control characters or newlines in an argument), TOO_LARGE, TIMEOUT.';

export const methods: MethodDef[] = [
  method({
    name: 'call',
    params: [param('msg', Any)],
    returns: 'any',
    help: 'call(msg): echo test; replies msg unchanged.',
    handler: async ([msg]) => msg,
  }),
  method({
    name: 'get_vncport',
    params: [param('domain', Plain(256))],
    returns: 'string',
    help:
      'get_vncport(domain): the VNC port of a running CloudStack VM, as a string (e.g. "5901"), from `virsh vncdisplay` (xenstore on Xen without libvirt). ' +
      'A name that is not a CloudStack VM name (i-2-29-VM, r-4-VM, ...) gets "0", as from the Ovm3 module. Faults: NOT_FOUND (no such domain, or no VNC display).',
    handler: getVncPort,
  }),
  method({
    name: 'exec_domr',
    params: [
      param('host', IpLiteral, 'system VM IP inside ovm3.domr_networks'),
      param('cmd', Plain(MAX_CMD_BYTES), 'command line for the system VM, e.g. /opt/cloud/bin/update_config.py x.json'),
      optional('timeout', seconds(3600), 'seconds the SSH connect may take, as in the module (default ovm3.domr_connect_timeout_s)'),
    ],
    returns: 'struct',
    timeoutMs: EXEC_DOMR_MAX_MS,
    help:
      'exec_domr(host, cmd[, timeout]): run cmd on a system VM over ssh (ovm3.ssh_user, ovm3.ssh_key, ovm3.ssh_port). ' +
      'Reply {rc: i8, out: string, err: string} (rc as <i8>, as CloudStack\'s client expects); rc 255 means ssh itself failed (err says why). ' +
      'timeout bounds the connect only; the whole command may run ovm3.domr_command_timeout_s (default 600 s); either limit firing is a TIMEOUT fault naming it. ' +
      'cmd goes to the VM\'s shell as one argument, but brick refuses ; & | ` $( ${ < > \\ and control characters/newlines in it. ' + SSH_FAULTS,
    handler: async (args, ctx) => ({ ...(await execDomr(args, ctx)) }),
  }),
  portCheck('check_domr_port', 'false', 'INVALID_PARAMS (not an IP or host name)'),
  portCheck('check_dom0_port', 'nil', 'INVALID_PARAMS (not an IP or host name)'),
  method({
    name: 'check_domr_ssh',
    params: [param('ip', IpLiteral), optional('port', Port), optional('timeout', seconds(600), 'seconds, default 10')],
    returns: 'boolean',
    help: 'check_domr_ssh(ip[, port, timeout]): true when ssh to the system VM logs in and runs `true`; false when it cannot. ' + SSH_FAULTS,
    handler: checkDomrSsh,
  }),
  method({
    name: 'check_dom0_ip',
    params: [param('ip', IpLiteral)],
    returns: 'boolean',
    help: 'check_dom0_ip(ip): true when an interface of this host holds ip (from `ip -json addr`); used for the pool VIP. Faults: INVALID_PARAMS (not an IP).',
    handler: checkDom0Ip,
  }),
  method({
    name: 'ovs_domr_upload_file',
    carriesFile: true,
    params: [param('domr', IpLiteral), param('path', RemoteDir), param('file', RemoteFileName, 'file name'), param('content', Content(MAX_FILE_BYTES))],
    returns: 'boolean',
    help: 'ovs_domr_upload_file(domr, path, file, content): copy content to path/file on a system VM with scp. Reply true; a failed copy is COMMAND_FAILED with scp\'s error. ' + SSH_FAULTS,
    handler: domrUploadFile,
  }),
  method({
    name: 'ovs_mkdirs',
    params: [param('dir', PathText), optional('mode', FileMode, 'default 0700 (448)')],
    returns: 'any',
    help: 'ovs_mkdirs(dir[, mode]): create dir and missing parents with mode. Reply nil when it created dir, true when dir already existed (as the Ovm3 module; the Java client depends on it). ' + FILE_FAULTS,
    handler: ovsMkdirs,
  }),
  method({
    name: 'ovs_check_file',
    params: [param('file', PathText)],
    returns: 'boolean',
    help: 'ovs_check_file(file): true when file is a regular file. ' + FILE_FAULTS,
    handler: ovsCheckFile,
  }),
  method({
    name: 'ovs_upload_ssh_key',
    carriesFile: true,
    params: [param('keyfile', FileName, 'a file name, e.g. id_rsa.cloud'), param('content', Content(MAX_KEY_BYTES))],
    returns: 'boolean',
    help: 'ovs_upload_ssh_key(keyfile, content): write a key beside ovm3.ssh_key (/root/.ssh by default), mode 0600 in a 0700 directory, atomically. Reply true. ' + FILE_FAULTS,
    handler: ovsUploadSshKey,
  }),
  method({
    name: 'ovs_upload_file',
    carriesFile: true,
    params: [param('path', PathText), param('filename', FileName), param('content', Content(MAX_FILE_BYTES))],
    returns: 'boolean',
    help: 'ovs_upload_file(path, filename, content): write path/filename atomically (temp file, fsync, rename), creating path (0700) if missing. New files 0644 (0600 in a .ssh directory); an existing file keeps its mode, owner and group. Reply true. ' + FILE_FAULTS,
    handler: ovsUploadFile,
  }),
  method({
    name: 'ovs_dom0_stats',
    params: [param('bridge', IfName)],
    returns: 'struct',
    help: 'ovs_dom0_stats(bridge): {cpu, free, total, tx, rx}, all strings: cpu percent busy over a short sample, free/total memory in bytes (xl info on Xen, /proc/meminfo elsewhere), tx/rx bytes of the bridge. Faults: NOT_FOUND (no such bridge), INVALID_PARAMS.',
    handler: dom0Stats,
  }),
  method({
    name: 'ovs_domU_stats',
    params: [param('domain', VmName)],
    returns: 'struct',
    help: 'ovs_domU_stats(domain): {rd_bytes, wr_bytes, rd_ops, wr_ops, tx_bytes, rx_bytes, cputime, uptime, vcpus}, all strings (cputime and uptime in seconds; "0" where the host does not tell). From virsh domstats, or xl on Xen without libvirt. Faults: INVALID_PARAMS (not a CloudStack VM name), NOT_FOUND.',
    handler: async (args, ctx) => ({ ...(await domUStats(args, ctx)) }),
  }),
  method({
    name: 'get_module_version',
    params: [],
    returns: 'string',
    help: `get_module_version(): the Ovm3 module API level brick implements, "${OVM3_MODULE_VERSION}".`,
    handler: async () => OVM3_MODULE_VERSION,
  }),
  method({
    name: 'get_ovs_version',
    params: [],
    returns: 'string',
    help: 'get_ovs_version(): the Oracle VM Server version from /etc/ovs-release, e.g. "3.2.1". Faults: UNSUPPORTED (not an OVM host).',
    handler: () => getOvsVersion(),
  }),
  method({
    name: 'ping',
    params: [param('host', HostOrIp), optional('count', intIn(1, 10), '1-10, default 1')],
    returns: 'boolean',
    help: 'ping(host[, count]): true when `ping -c count` gets a reply. host must be an IP address or a host name. Faults: INVALID_PARAMS.',
    handler: ping,
  }),
  method({
    name: 'ovs_control_interface',
    params: [param('dev', IfName, 'control bridge, e.g. control0'), param('cidr', ControlCidr, 'e.g. 169.254.0.0/16 (a network means its first host, 169.254.0.1)')],
    returns: 'boolean',
    help:
      'ovs_control_interface(dev, cidr): set up the link-local control network as network_setup_control does (bridge up with ARP on, the address, ' +
      'the only route for the network through dev, NOZEROCONF, no stale ifcfg-<dev>); idempotent. Reply true. ' +
      'Faults: INVALID_PARAMS, CONFLICT (dev is not a bridge), COMMAND_FAILED, VERIFY_FAILED.',
    handler: ovsControlInterface,
  }),
  method({
    name: 'check_dom0_storage_health_check',
    params: [
      ...storageArgs('the pool to heartbeat (absolute; a trailing slash or a symlink is resolved): added as a runtime pool when it is a mount point', 'this host\'s CloudStack guid: the heartbeat file is .hb-<guid>'),
      param('timeout', CHECK_SECONDS),
      param('interval', CHECK_SECONDS),
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
    handler: storageHealthCheck,
  }),
  method({
    name: 'check_dom0_storage_health',
    params: [...storageArgs('ignored (as by the module)', 'the host to check'), param('timeout', CHECK_SECONDS, 'seconds: an older heartbeat means the host is not alive')],
    returns: 'boolean',
    help:
      'check_dom0_storage_health(path, script, guid, timeout): true when host guid\'s heartbeat on the fencer\'s pools (the [[fencer.pool]] entries and the runtime pools) is younger than timeout, ' +
      'false when it is older on any pool. The file is read in a child process with a deadline (fencer.probe_timeout_s). ' +
      'Faults: NOT_READY (no pools, or the file could not be read on any pool: cannot tell), INVALID_PARAMS.',
    handler: storageHealth,
  }),
];
