// The config file's schema: every key, its type, its default and a one-line description. Unknown
// keys are errors (additionalProperties: false everywhere) so a typo cannot silently disable a
// setting. Cross-field rules and warnings live in rules.ts.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { MAX_SECONDS } from './limits.js';

const Seconds = (def: number, description: string, min = 0) =>
  Type.Number({ default: def, minimum: min, maximum: MAX_SECONDS, description, 'x-unit': 'seconds' });
const Str = (def: string, description: string) => Type.String({ default: def, description });
const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description });
const Section = <T extends Record<string, TSchema>>(props: T, description: string) =>
  Type.Object(props, { additionalProperties: false, default: {}, description });

export const ServerSchema = Section(
  {
    listen: Str('0.0.0.0:8898', 'host:port to listen on; the vendor OVM agent keeps 8899'),
    tls_cert: Str('/etc/brick/tls/cert.pem', 'PEM certificate; with tls_key set too, brick serves HTTPS; "" and tls_key = "": plain HTTP'),
    tls_key: Str('/etc/brick/tls/key.pem', 'PEM private key for tls_cert'),
    allow_plain_http: Bool(false, 'allow plain HTTP on a non-loopback address (CloudStack\'s Ovm3 client speaks HTTP only)'),
    user: Type.String({ default: 'oracle', minLength: 1, description: 'HTTP Basic user, as the Ovm3 client sends' }),
    password_file: Str('/etc/brick/password', 'file holding the HTTP Basic password (mode 0600)'),
    password: Str('', 'the password inline; password_file is preferred'),
    generate_credentials: Bool(true, 'on start, create a random password_file (0600) and, when tls_cert/tls_key are set, a self-signed certificate if they do not exist'),
    vendor_agent_url: Str('', 'methods brick does not serve are passed to this XML-RPC server, e.g. http://127.0.0.1:8899'),
    file_roots: Type.Array(Type.String(), {
      default: ['/OVS/Repositories', '/opt/cloudstack', '/root/.ssh'],
      description: "the only directory trees the file calls may touch; CloudStack's Ovm3 template and snapshot copies also call ovs_mkdirs under /nfsmnt (its secondary-storage mount): add it on hosts that copy that way, or those calls answer PATH_REFUSED",
    }),
    body_limit_bytes: Type.Integer({
      default: 64 * 1024 * 1024,
      minimum: 1024,
      description: 'largest request body of a call that carries file contents (ovs_upload_file, ovs_upload_ssh_key, ovs_domr_upload_file, calls passed to the vendor agent); larger gets HTTP 413. Also the largest reply taken from the vendor agent; larger is a VENDOR_AGENT fault',
    }),
    call_body_limit_bytes: Type.Integer({ default: 1024 * 1024, minimum: 1024, description: 'largest request body of every other call; larger gets HTTP 413 as soon as the method name is read' }),
    max_params: Type.Integer({ default: 64, minimum: 1, description: 'most <param>s in one request; more is a PARSE_ERROR fault, refused while reading' }),
    max_values: Type.Integer({ default: 10_000, minimum: 16, description: 'most <value>s in one request (and four times as many elements); more is a PARSE_ERROR fault, refused while reading' }),
    max_multicall_calls: Type.Integer({ default: 256, minimum: 1, description: 'most calls in one system.multicall; more is a PARSE_ERROR fault, refused while reading' }),
    header_timeout_s: Seconds(10, 'a request\'s headers must arrive within this long (HTTP 408 and the connection closed otherwise)', 1),
    body_min_rate_bytes_s: Type.Integer({
      default: 1024 * 1024,
      minimum: 1024,
      description: 'a request body must arrive within header_timeout_s + its size limit at this rate (11 s for an ordinary call, 74 s for a 64 MiB file call by default)',
    }),
    idle_timeout_s: Seconds(15, 'an idle keep-alive connection is closed after this long', 1),
    max_connections: Type.Integer({
      default: 256,
      minimum: 8,
      description: 'most open connections (kept below the open-file limit); at the cap a new connection replaces the oldest unauthenticated one, or is refused; logged and counted',
    }),
    call_timeout_s: Seconds(120, 'default deadline for one call', 1),
    metrics: Bool(true, 'serve Prometheus metrics on GET /metrics (behind the same auth)'),
  },
  'the XML-RPC agent extension (brick serve)',
);

export const Ovm3Schema = Section(
  {
    ssh_key: Str('/root/.ssh/id_rsa.cloud', 'private key for exec_domr, check_domr_ssh and ovs_domr_upload_file'),
    ssh_port: Type.Integer({ default: 3922, minimum: 1, maximum: 65535, description: 'the system VMs\' SSH port' }),
    ssh_user: Str('root', 'user on the system VMs'),
    domr_networks: Type.Array(Type.String(), {
      default: ['169.254.0.0/16'],
      description: 'CIDRs the domr calls may reach (link-local control network by default)',
    }),
    ssh_timeout_s: Seconds(30, 'default deadline for check_domr_ssh and ovs_domr_upload_file when the caller gives none', 1),
    domr_connect_timeout_s: Seconds(10, "exec_domr: how long the SSH connection to the system VM may take when the call's timeout argument is absent (the module's default)", 1),
    domr_command_timeout_s: Type.Number({
      default: 600,
      minimum: 1,
      maximum: 3600,
      description: 'exec_domr: the whole command (connect included) is killed after this long; slow virtual-router scripts take minutes',
      'x-unit': 'seconds',
    }),
  },
  'the CloudStack Ovm3 module\'s calls',
);

export const NetworkSchema = Section(
  {
    backend: Type.Union([Type.Literal('linuxbridge'), Type.Literal('openvswitch')], {
      default: 'linuxbridge',
      description: 'linuxbridge or openvswitch',
    }),
    vlan_bridge_name: Str('{bridge}.{vlan}', 'VLAN bridge name pattern: Ovm3 {bridge}.{vlan}, KVM br{pif}-{vlan}'),
    namespace: Str('', 'run every network change inside this network namespace (created if missing); sandbox and tests'),
    gc_interval_s: Seconds(0, 'run network_gc on this period; 0 = only when called'),
    command_timeout_s: Seconds(30, 'deadline for one ip/ovs-vsctl/ovs-ofctl invocation', 1),
    ovs_rundir: Str('', 'Open vSwitch run directory (OVS_RUNDIR: db.sock, bridge .mgmt sockets, vhost-user sockets); "" = the OVS default'),
  },
  'host networking',
);

export const DomainSchema = Section(
  {
    libvirt_uri: Str('', 'default: xen:///system on Xen, qemu:///system on KVM'),
    hooks_dir: Str('/etc/brick/hooks', 'holds before_device_create/ (run once per NIC) and before_vm_start/'),
    hooking_dir: Str('/usr/lib/brick/python', "directory of brick's hooking module (vdsm's hook API: import hooking), put on every hook's PYTHONPATH"),
    hook_timeout_s: Seconds(30, 'deadline for one hook script', 1),
    extraconfig_allow: Type.Array(Type.String(), {
      default: ['memoryBacking', 'cpu', 'numatune'],
      description: 'top-level domain elements extraconfig may set',
    }),
    dpdk_interface_allow: Type.Array(Type.String(), {
      default: ['model', 'driver', 'mtu', 'tune', 'rom', 'link'],
      description: "elements extraconfig's dpdk-interface-TAG sections may set in each vhost-user NIC (add source only to let them override the dpdk tweak's socket)",
    }),
  },
  'libvirt domain XML',
);

export const PoolSchema = Type.Object(
  {
    path: Type.String({ minLength: 1, description: 'the mounted primary storage directory' }),
    heartbeat: Type.Union([Type.Literal('ovm'), Type.Literal('kvm')], {
      default: 'ovm',
      description: 'ovm: <path>/.hb-<host_id> float epoch; kvm: <path>/KVMHA/hb-<host_id> integer epoch',
    }),
    fence_when: Type.Union([Type.Literal('in-use'), Type.Literal('always')], {
      default: 'in-use',
      description: 'in-use: fence only while a running VM uses the pool; always',
    }),
    require_mount: Type.Boolean({
      default: true,
      description: 'probe fails while the pool directory is on the root filesystem (the mount vanished); false only for a local-directory pool (sandbox, tests)',
    }),
  },
  { additionalProperties: false },
);

export const FencerSchema = Section(
  {
    action: Type.Union([Type.Literal('reboot'), Type.Literal('crash'), Type.Literal('kill-vms'), Type.Literal('log-only'), Type.Literal('command')], {
      default: 'reboot',
      description: 'reboot (sysrq b) | crash (sysrq c) | kill-vms (kill what holds the expired pool; reset as reboot when that cannot be shown safe) | log-only | command',
    }),
    kill_timeout_s: Seconds(10, 'kill-vms: reset the host when the holders of an expired pool are not gone, with no write pending, this long after the kill began', 0.1),
    command: Type.Union([Type.String(), Type.Array(Type.String())], {
      default: '',
      description: 'with action = "command": an argv array, or a string split on spaces (no shell, so no quotes or shell characters)',
    }),
    probe_interval_s: Seconds(5, 'time between heartbeat probes of one pool', 0.05),
    probe_timeout_s: Seconds(10, 'deadline for one probe', 0.05),
    fence_after_s: Seconds(30, 'fence when a used pool has had no verified heartbeat for this long', 0.1),
    startup_window_s: Seconds(
      120,
      'a pool not verified this long after start is an error; if it guards VMs (fence_when = "always", or a VM uses it) the fencer exits non-zero (watchdog disarmed, armed pools handed to the next start)',
      1,
    ),
    watchdog_device: Str('/dev/watchdog', '"" = none: a wedged fencer then cannot reset the host'),
    watchdog_timeout_s: Seconds(20, 'the watchdog\'s reset timeout', 1),
    sysrq_trigger: Str('/proc/sysrq-trigger', 'opened at start; written to fence'),
    state_dir: Str('/run/brick', 'local disk only; the agent and brick status read fencer state here'),
    marker_dir: Str('/var/lib/brick', 'local persistent disk: the fence marker that survives the reset'),
    runtime_pools_file: Str(
      '/var/lib/brick/runtime-pools.json',
      'local persistent disk: the pools the orchestrator added (heartbeat_add_pool, check_dom0_storage_health_check); brick serve writes it, the fencer reads it every 2 s through a child (a disk that hangs holds the child, never the fencer)',
    ),
    host_id: Str('', "default: ovm pools: the Ovm3 guid CloudStack gives this host, UUID.nameUUIDFromBytes(primary IPv4); kvm pools: the primary IPv4"),
    dead_host_window_s: Seconds(60, 'the orchestrator declares a host dead after this long without a heartbeat', 1),
    allow_unsafe_timing: Bool(false, 'start even when fence_after_s + watchdog_timeout_s + 5 s is not below dead_host_window_s'),
    vm_query_timeout_s: Seconds(5, 'deadline for asking libvirt/xl which VMs run', 0.1),
    vm_query: Type.Union([Type.Literal('auto'), Type.Literal('libvirt'), Type.Literal('xl'), Type.Literal('none')], {
      default: 'auto',
      description: 'how the fencer learns which pools running VMs use: libvirt (virsh, domain.libvirt_uri), xl, auto (virsh if installed, else xl), none (every pool counts as used)',
    }),
    pool: Type.Array(PoolSchema, { default: [], description: 'primary storage pools to heartbeat' }),
  },
  'the NFS heartbeat watchdog (brick fencer)',
);

export const ConfigSchema = Type.Object(
  {
    server: ServerSchema,
    ovm3: Ovm3Schema,
    network: NetworkSchema,
    domain: DomainSchema,
    fencer: FencerSchema,
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type PoolConfig = Static<typeof PoolSchema>;
