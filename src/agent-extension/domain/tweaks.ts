// The tweaks struct of domain_tweak/domain_define: checked in full first (unknown keys, wrong types,
// bad values are INVALID_PARAMS naming the key), then applied in ONE FIXED ORDER, whatever order the
// caller's struct has:
//   1. xen_pv        virtio → Xen PV devices, PV or HVM boot
//   2. extnet        NIC bridge → libvirt network
//   3. macspoof      drop no-mac-spoofing filterrefs
//   4. extraconfig   allow-listed elements merged into <domain>
//   5. dpdk          NICs → vhost-user, shared hugepages and NUMA memory; then extraconfig's
//                    dpdk-interface-TAG sections merged into every vhost-user NIC
//   6. qemu_cmdline  <qemu:commandline> arguments (KVM only)
//   7. hooks         before_device_create scripts once per NIC (with custom + nic_custom), then
//                    before_vm_start scripts, last, so they see the final XML
// Steps 1-6 are pure functions on the parsed document; a failure in any of them throws before the
// document is serialized, so nothing half-done is ever returned. Step 7 runs host executables.
import { BrickError } from '../../shared/errors.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../shared/log.js';
import type { Runner } from '../../shared/run.js';
import { interfaces, normalizeMac, parseDomainXml, parseXmlStrict, replaceElements, serializeElement, serializeXml, type Document, type Element } from './xml.js';
import { applyXenPv, type XenPvOptions } from './xen-pv.js';
import { applyExtnet, NETWORK_NAME_RE } from './extnet.js';
import { applyMacspoof } from './macspoof.js';
import { applyDpdkInterfaceConfig, applyExtraconfig, parseExtraconfig, type ExtraconfigSection } from './extraconfig.js';
import { applyDpdk, SOCKET_PATH_RE, type DpdkPort } from './dpdk.js';
import { applyQemuCmdline } from './qemu-cmdline.js';
import { checkCustomName, runBeforeDeviceCreate, runBeforeVmStart, type HookOptions, type HookRun } from './hooks.js';

/** The documented order; domain_tweak's help text is built from it. */
export const TWEAK_ORDER = ['xen_pv', 'extnet', 'macspoof', 'extraconfig', 'dpdk', 'qemu_cmdline', 'hooks'] as const;
export const TWEAK_KEYS = [...TWEAK_ORDER, 'custom', 'nic_custom'] as const;

export interface TweakPlan {
  xen_pv?: XenPvOptions;
  extnet?: Map<string, string>;
  macspoof?: string[];
  extraconfig?: ExtraconfigSection[];
  dpdk?: Map<string, DpdkPort>;
  qemu_cmdline?: string[];
  hooks?: boolean;
  custom: Record<string, string>;
  /** MAC (or "*") → that NIC's custom properties for before_device_create hooks. */
  nic_custom?: Map<string, Record<string, string>>;
}

const MAX_ARG = 4096;
const MAX_ARGS = 256;

function bad(key: string, msg: string): never {
  throw new BrickError('INVALID_PARAMS', `tweaks.${key}: ${msg}`);
}

function isStruct(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !Buffer.isBuffer(v);
}

function macMap<T>(key: string, v: unknown, each: (mac: string, value: unknown) => T): Map<string, T> {
  if (!isStruct(v) || !Object.keys(v).length) bad(key, 'must be a non-empty struct of MAC address → value ("*" for every NIC)');
  const m = new Map<string, T>();
  for (const [k, val] of Object.entries(v)) {
    const mac = normalizeMac(k, `tweaks.${key}`);
    if (m.has(mac)) bad(key, `MAC ${mac} is given twice`);
    m.set(mac, each(mac, val));
  }
  return m;
}

/** Check the whole tweaks struct; nothing is applied until all of it is valid. */
export function parseTweaks(tweaks: unknown, config: Config): TweakPlan {
  if (tweaks === null || tweaks === undefined) return { custom: {} };
  if (!isStruct(tweaks)) throw new BrickError('INVALID_PARAMS', 'tweaks: must be a struct (empty for none)');
  const plan: TweakPlan = { custom: {} };
  for (const [key, v] of Object.entries(tweaks)) {
    switch (key) {
      case 'xen_pv':
        if (v === true) plan.xen_pv = { hvm: false };
        else if (v === false) break;
        else if (isStruct(v)) {
          for (const k of Object.keys(v)) if (k !== 'hvm') bad('xen_pv', `unknown option "${k}" (only hvm)`);
          if (v.hvm !== undefined && typeof v.hvm !== 'boolean') bad('xen_pv', 'hvm must be a boolean');
          plan.xen_pv = { hvm: v.hvm === true };
        } else bad('xen_pv', 'must be true or a struct {hvm: boolean}');
        break;
      case 'extnet':
        plan.extnet = macMap('extnet', v, (mac, net) => {
          if (typeof net !== 'string' || !NETWORK_NAME_RE.test(net))
            bad('extnet', `network for ${mac} must be a libvirt network name (letters, digits, _ . - and spaces), got ${JSON.stringify(net)}`);
          return net;
        });
        break;
      case 'macspoof':
        if (v === true) plan.macspoof = ['*'];
        else if (v === false) break;
        else if (Array.isArray(v) && v.length) {
          plan.macspoof = v.map((m, i) => {
            if (typeof m !== 'string') bad('macspoof', `[${i}] must be a MAC address string`);
            return normalizeMac(m, `tweaks.macspoof[${i}]`);
          });
        } else bad('macspoof', 'must be true (every NIC) or a non-empty array of MAC addresses');
        break;
      case 'extraconfig':
        if (typeof v !== 'string') bad('extraconfig', 'must be a string, URL-encoded as CloudStack\'s API passes it');
        if (v.trim()) plan.extraconfig = parseExtraconfig(v, config.domain.extraconfig_allow, config.domain.dpdk_interface_allow);
        break;
      case 'dpdk':
        plan.dpdk = macMap('dpdk', v, (mac, p): DpdkPort => {
          if (!isStruct(p)) bad('dpdk', `value for ${mac} must be a struct {socket, mode} as dpdk_add_port returns`);
          for (const k of Object.keys(p)) if (k !== 'socket' && k !== 'mode') bad('dpdk', `${mac}: unknown option "${k}" (socket, mode)`);
          if (typeof p.socket !== 'string' || !SOCKET_PATH_RE.test(p.socket) || p.socket.split('/').includes('..'))
            bad('dpdk', `${mac}: socket must be an absolute path of letters, digits and _ . + @ : - / without .., got ${JSON.stringify(p.socket)}`);
          if (p.mode !== 'server' && p.mode !== 'client')
            bad('dpdk', `${mac}: mode must be "server" or "client" (dpdk_add_port's guest_mode), got ${JSON.stringify(p.mode)}`);
          return { socket: p.socket, mode: p.mode };
        });
        break;
      case 'qemu_cmdline':
        if (!Array.isArray(v)) bad('qemu_cmdline', 'must be an array of strings');
        if (v.length > MAX_ARGS) bad('qemu_cmdline', `at most ${MAX_ARGS} arguments`);
        plan.qemu_cmdline = v.map((a, i) => {
          if (typeof a !== 'string' || a === '') bad('qemu_cmdline', `[${i}] must be a non-empty string`);
          if (a.length > MAX_ARG) bad('qemu_cmdline', `[${i}] is longer than ${MAX_ARG} characters`);
          // eslint-disable-next-line no-control-regex
          if (/[\x00-\x1f\x7f]/.test(a)) bad('qemu_cmdline', `[${i}] contains a control character`);
          return a;
        });
        break;
      case 'hooks':
        if (typeof v !== 'boolean') bad('hooks', 'must be a boolean');
        plan.hooks = v;
        break;
      case 'custom':
        plan.custom = customProps('custom', v);
        break;
      case 'nic_custom':
        plan.nic_custom = macMap('nic_custom', v, (mac, props) => customProps(`nic_custom.${mac}`, props));
        break;
      default:
        throw new BrickError('INVALID_PARAMS', `tweaks: unknown tweak "${key}" (known: ${TWEAK_KEYS.join(', ')})`);
    }
  }
  if (Object.keys(plan.custom).length && !plan.hooks) bad('custom', 'custom properties are only for hooks; add hooks: true');
  if (plan.nic_custom && !plan.hooks) bad('nic_custom', 'per-NIC custom properties are only for hooks; add hooks: true');
  return plan;
}

/** A struct of custom properties: environment-safe names, string values. */
function customProps(key: string, v: unknown): Record<string, string> {
  if (!isStruct(v)) bad(key, 'must be a struct of strings');
  const out: Record<string, string> = {};
  for (const [name, val] of Object.entries(v)) {
    const why = checkCustomName(name, key);
    if (why) throw new BrickError('INVALID_PARAMS', `tweaks.${why}`);
    if (typeof val !== 'string') bad(key, `"${name}" must be a string`);
    if (val.includes('\0') || val.length > 65536) bad(key, `"${name}" must be at most 65536 characters and contain no NUL`);
    out[name] = val;
  }
  return out;
}

/** Steps 1-6: the pure tweaks, in the fixed order, on a parsed document (changed in place). */
export function applyPureTweaks(doc: Document, plan: TweakPlan): void {
  if (plan.xen_pv) applyXenPv(doc, plan.xen_pv);
  if (plan.extnet) applyExtnet(doc, plan.extnet);
  if (plan.macspoof) applyMacspoof(doc, plan.macspoof);
  if (plan.extraconfig) applyExtraconfig(doc, plan.extraconfig);
  if (plan.dpdk) applyDpdk(doc, plan.dpdk);
  // dpdk-interface-TAG extraconfig sections go into the vhost-user NICs the dpdk tweak just made.
  if (plan.extraconfig) applyDpdkInterfaceConfig(doc, plan.extraconfig);
  if (plan.qemu_cmdline) applyQemuCmdline(doc, plan.qemu_cmdline);
}

/** Parse, check, apply steps 1-6 and serialize; no host access. */
export function tweakDomainXml(xml: string, tweaks: unknown, config: Config): string {
  const doc = parseDomainXml(xml);
  const plan = parseTweaks(tweaks, config);
  applyPureTweaks(doc, plan);
  return serializeXml(doc);
}

export interface TweakEnv {
  config: Config;
  run: Runner;
  log: Logger;
  /** The call's signal, handed to the hooks. */
  signal?: AbortSignal;
}

/** All seven steps: the pure tweaks, then the hooks when asked. A parsed `xml` is changed in place. */
export async function tweakDomain(xml: string | Document, tweaks: unknown, env: TweakEnv): Promise<{ xml: string; hooks: HookRun[] }> {
  const doc = typeof xml === 'string' ? parseDomainXml(xml) : xml;
  const plan = parseTweaks(tweaks, env.config);
  applyPureTweaks(doc, plan);
  if (!plan.hooks) return { xml: serializeXml(doc), hooks: [] };
  const opts: HookOptions = {
    hooksDir: env.config.domain.hooks_dir,
    hookingDir: env.config.domain.hooking_dir,
    timeoutS: env.config.domain.hook_timeout_s,
    custom: plan.custom,
    run: env.run,
    log: env.log,
    signal: env.signal,
  };
  const runs: HookRun[] = [];
  await runDeviceHooks(doc, plan, opts, runs);
  const r = await runBeforeVmStart(serializeXml(doc), opts, runs);
  return { xml: r.xml, hooks: r.runs };
}

/** before_device_create once per NIC in document order; each NIC the chain leaves replaces the original in place. */
async function runDeviceHooks(doc: Document, plan: TweakPlan, opts: HookOptions, runs: HookRun[]): Promise<void> {
  const nics = interfaces(doc);
  const perNic = plan.nic_custom ?? new Map<string, Record<string, string>>();
  for (const mac of perNic.keys()) {
    if (mac !== '*' && !nics.some((n) => n.mac === mac)) {
      throw new BrickError('NOT_FOUND', `nic_custom: no <interface> with MAC ${mac} (its NICs: ${nics.map((n) => n.mac || '(no mac)').join(', ') || 'none'})`);
    }
  }
  const results = await runBeforeDeviceCreate(
    serializeXml(doc),
    nics.map((n) => ({ mac: n.mac, xml: serializeElement(n.el), custom: perNic.get(n.mac) ?? perNic.get('*') ?? {} })),
    opts,
    runs,
  );
  if (!results) return;
  // The hook edited the element as serializeElement wrote it, inner indentation included.
  replaceElements(nics.map((n, i) => [n.el, doc.importNode(parseXmlStrict(results[i], 'the NIC XML', 'HOOK_FAILED').documentElement!, true) as Element] as const));
}
