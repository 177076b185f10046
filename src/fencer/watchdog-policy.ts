// Before the fencer opens a real watchdog device it makes sure the device will do what the timing
// rules assume (reference/fencing.md §7 rules 6, 7, 10): its timeout must be watchdog_timeout_s —
// config validation proved fence_after_s + watchdog_timeout_s + slack beats the orchestrator's
// dead-host window, and a driver left at its default (softdog: 60 s) would silently break that.
// brick sets the timeout with util-linux `wdctl --settimeout` (Node cannot ioctl) and reads it back
// from sysfs; it refuses to start if the device will not take it. A software watchdog (softdog) is
// accepted with a warning: it cannot reset a host whose kernel is wedged.
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { BrickError } from '../shared/errors.js';
import type { Runner } from '../shared/run.js';

export interface WatchdogInfo {
  sysfs: string;
  identity?: string;
  timeoutS?: number;
  nowayout?: boolean;
}

/** /dev/watchdog is the legacy node of watchdog0; /dev/watchdogN is watchdogN. */
export function sysfsDirFor(device: string, sysfsRoot = '/sys/class/watchdog'): string {
  const name = basename(device);
  return `${sysfsRoot}/${name === 'watchdog' ? 'watchdog0' : name}`;
}

export function readWatchdogInfo(device: string, sysfsRoot?: string, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): WatchdogInfo {
  const sysfs = sysfsDirFor(device, sysfsRoot);
  const attr = (n: string) => {
    try {
      return read(`${sysfs}/${n}`).trim();
    } catch {
      return undefined;
    }
  };
  const timeout = attr('timeout');
  const nowayout = attr('nowayout');
  return {
    sysfs,
    identity: attr('identity'),
    timeoutS: timeout !== undefined && /^\d+$/.test(timeout) ? Number(timeout) : undefined,
    nowayout: nowayout === undefined ? undefined : nowayout === '1',
  };
}

export interface WatchdogJudgement {
  /** The timeout must be set before the device is opened. */
  setTimeout: boolean;
  warnings: string[];
}

export function judgeWatchdog(device: string, info: WatchdogInfo, wantS: number): WatchdogJudgement {
  const warnings: string[] = [];
  if (/software watchdog|softdog/i.test(info.identity ?? ''))
    warnings.push(`${device} is softdog, a software timer: it resets a host whose fencer hangs, not one whose kernel hangs; prefer a hardware or xen_wdt watchdog`);
  if (info.timeoutS === undefined)
    warnings.push(`${device}: ${info.sysfs}/timeout is not readable; cannot confirm the watchdog's timeout is ${wantS} s`);
  if (info.nowayout === false)
    warnings.push(`${device}: nowayout is off: a program that opens and magic-closes the device can disarm it`);
  return { setTimeout: info.timeoutS !== undefined && info.timeoutS !== wantS, warnings };
}

export interface PrepareOptions {
  run: Runner;
  sysfsRoot?: string;
  read?: (p: string) => string;
  isCharDevice?: (p: string) => boolean;
  warn: (msg: string, detail: Record<string, unknown>) => void;
}

/** Whether p is a character device (a watchdog driver's node), not a file or FIFO standing in for one. */
export function isCharDevice(p: string): boolean {
  try {
    return statSync(p).isCharacterDevice();
  } catch {
    return false;
  }
}

/**
 * Make the device's timeout watchdog_timeout_s before it is opened. A stand-in that is not a
 * character device (the tests' FIFO or file) has no driver to ask and is left as it is.
 */
export async function prepareWatchdog(device: string, wantS: number, o: PrepareOptions): Promise<WatchdogInfo | undefined> {
  const isChar = o.isCharDevice ?? isCharDevice;
  if (!isChar(device)) return undefined;
  let info = readWatchdogInfo(device, o.sysfsRoot, o.read);
  const j = judgeWatchdog(device, info, wantS);
  for (const w of j.warnings) o.warn(w, { device, identity: info.identity, timeout_s: info.timeoutS });
  if (!j.setTimeout) return info;
  const r = await o.run('wdctl', ['--settimeout', String(wantS), device], { timeoutMs: 5000, allowFailure: true });
  info = readWatchdogInfo(device, o.sysfsRoot, o.read);
  if (info.timeoutS !== wantS)
    throw new BrickError(
      'CONFLICT',
      `fencer.watchdog_timeout_s = ${wantS} but ${device} (${info.identity ?? 'unknown driver'}) keeps a ${info.timeoutS} s timeout` +
        `${r.code !== 0 ? ` (${r.stderr.trim().split('\n')[0] || 'wdctl: exit ' + r.code})` : ''}: the fencing deadline would not hold. ` +
        'Set the driver\'s timeout (module parameter, e.g. softdog soft_margin, iTCO_wdt heartbeat) or change watchdog_timeout_s to match',
    );
  return info;
}
