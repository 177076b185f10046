# brick's `hooking` module: the helper library vdsm hook scripts import (`import hooking`), with
# vdsm's public API, so hooks written for vdsm run unchanged under brick. brick puts this file's
# directory (config domain.hooking_dir, /usr/lib/brick/python in the packages) on every hook's
# PYTHONPATH. Written for brick (not a copy of vdsm's); Python 2.6+ and 3.x, standard library only.
#
# The contract it serves (README "Domain XML tweaks and hooks"):
#   $_hook_domxml   the file holding the domain XML (before_vm_start) or one device's XML
#                   (before_device_create); a hook reads it, edits it and writes it back
#   $_hook_json     the same for JSON data (not used by brick's hook points, kept for vdsm's API)
#   exit 0 ok; any other code fails the start after the chain; 2 also stops the chain
import io
import json
import os
import subprocess
import sys
from xml.dom import minidom

__all__ = [
    'read_domxml', 'write_domxml', 'read_json', 'write_json', 'log', 'exit_hook',
    'tobool', 'execCmd', 'load_vm_launch_flags_from_file', 'dump_vm_launch_flags_to_file',
]


def _path(var):
    try:
        return os.environ[var]
    except KeyError:
        exit_hook('hooking: $%s is not set; this script must run as a brick (or vdsm) hook' % var, 2)


def read_domxml():
    """The XML in $_hook_domxml as a minidom Document."""
    with io.open(_path('_hook_domxml'), 'rb') as f:
        return minidom.parseString(f.read())


def write_domxml(domxml):
    """Write a minidom Document back to $_hook_domxml (UTF-8)."""
    data = domxml.toxml(encoding='utf-8')
    with io.open(_path('_hook_domxml'), 'wb') as f:
        f.write(data)


def read_json():
    """The JSON in $_hook_json."""
    with io.open(_path('_hook_json'), 'r', encoding='utf-8') as f:
        return json.load(f)


def write_json(data):
    """Write `data` back to $_hook_json as JSON."""
    text = json.dumps(data)
    if not isinstance(text, type(u'')):
        text = text.decode('utf-8')
    with io.open(_path('_hook_json'), 'w', encoding='utf-8') as f:
        f.write(text)


def log(message):
    """A line on stderr: brick logs it with the hook's exit code."""
    sys.stderr.write(message + '\n')
    sys.stderr.flush()


def exit_hook(message, return_code=2):
    """Print `message` on stderr and exit; the default 2 fails the start and stops the chain."""
    sys.stderr.write(message + '\n')
    sys.stderr.flush()
    sys.exit(return_code)


def tobool(value):
    """vdsm's reading of a custom property as a boolean: True, 'true'/'yes'/'on' (any case) or a
    non-zero number; anything else (None, '', 'false', '0', junk) is False."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    s = str(value).strip().lower()
    if s in ('true', 'yes', 'on'):
        return True
    try:
        return int(s) != 0
    except ValueError:
        return False


def execCmd(command, data=None, cwd=None, env=None, sudo=False, raw=False, **_ignored):
    """Run `command` (a list, never through a shell); returns (rc, out, err). As in vdsm, out and err
    are lists of lines unless raw=True (then bytes). `sudo` is accepted and ignored: brick's hooks
    already run as the agent's user."""
    if isinstance(command, (str, bytes)):
        raise TypeError('execCmd takes an argument list, not a command string')
    p = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE if data is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        close_fds=True,
    )
    if data is not None and not isinstance(data, bytes):
        data = data.encode('utf-8')
    out, err = p.communicate(data)
    if raw:
        return p.returncode, out, err
    return p.returncode, out.decode('utf-8', 'replace').splitlines(), err.decode('utf-8', 'replace').splitlines()


def load_vm_launch_flags_from_file(vm_id):
    """brick defines domains and does not start them: the launch flags are always 0 (none)."""
    return 0


def dump_vm_launch_flags_to_file(vm_id, flags):
    """brick does not start the domain, so a hook cannot change how it starts: refuse clearly."""
    if int(flags) != 0:
        exit_hook('hooking: brick defines the domain and does not start it; launch flags (%s) cannot be set from a hook' % flags, 2)
