// The watchdog device and the sysrq trigger: opened once at start, written with synchronous
// one-byte writes on the main thread (never queued behind the libuv threadpool, §6.3).
import { closeSync, constants, fstatSync, openSync, writeSync } from 'node:fs';
import { BrickError } from '../shared/errors.js';

export interface Watchdog {
  readonly device: string;
  /** One NUL byte: a pet that can never contain the magic 'V'. */
  pet(): void;
  /** Clean stop only: 'V' then close, so the driver disarms (magic close). */
  disarm(): void;
  /** Close without 'V': the watchdog keeps counting and resets the host (fence, crash). */
  abandon(): void;
}

export interface FdOps {
  openSync: typeof openSync;
  writeSync: (fd: number, b: Buffer) => number;
  closeSync: typeof closeSync;
  fstatSync: typeof fstatSync;
}
const realFs: FdOps = { openSync, writeSync: (fd, b) => writeSync(fd, b), closeSync, fstatSync };

export function openWatchdog(device: string, fs: FdOps = realFs): Watchdog {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO stand-in without a reader must not block start-up; real watchdog drivers ignore it.
    fd = fs.openSync(device, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EBUSY')
      throw new BrickError(
        'CONFLICT',
        `fencer.watchdog_device ${device} is held by another program (EBUSY): a watchdog has one owner. Stop it ` +
          '(systemd RuntimeWatchdogSec, watchdog(8), wdmd, xen-watchdog) or point watchdog_device at another device',
      );
    if (err.code === 'ENOENT')
      throw new BrickError('NOT_FOUND', `fencer.watchdog_device ${device} does not exist: load the driver (e.g. iTCO_wdt, xen_wdt) or set watchdog_device = ""`);
    throw new BrickError('COMMAND_FAILED', `fencer.watchdog_device ${device}: cannot open: ${err.code ?? err.message}`);
  }
  let open = true;
  const pet = Buffer.of(0);
  const magic = Buffer.from('V');
  return {
    device,
    pet() {
      if (open) fs.writeSync(fd, pet);
    },
    disarm() {
      if (!open) return;
      try {
        fs.writeSync(fd, magic);
      } finally {
        open = false;
        fs.closeSync(fd);
      }
    },
    abandon() {
      if (!open) return;
      open = false;
      fs.closeSync(fd);
    },
  };
}

export interface SysrqTrigger {
  readonly path: string;
  write(key: 'b' | 'c'): void;
}

export function openSysrq(path: string, fs: FdOps = realFs): SysrqTrigger {
  let fd: number;
  try {
    fd = fs.openSync(path, constants.O_WRONLY);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new BrickError('COMMAND_FAILED', `fencer.sysrq_trigger ${path}: cannot open for writing (${err.code ?? err.message}); the fencer must be able to reset the host`);
  }
  return {
    path,
    write(key) {
      fs.writeSync(fd, Buffer.from(key));
    },
  };
}
