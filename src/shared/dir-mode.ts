// A directory brick keeps its own files in (state_dir, marker_dir) that another user can write: he
// can replace what brick wrote there (the fencer's state that `brick status` and the agent read, the
// fence marker, the lease, the runtime pools file that says which pools the fencer guards) or
// plant a file of that name before brick makes it. brick makes these directories itself with the
// packages' modes (state_dir 0755, marker_dir 0700) but leaves one that is there already as it is
// (an admin chose it): `brick doctor` warns, and the fencer says so at start. doctor judges the
// runtime pools file's directory the same way when fencer.runtime_pools_file is set outside
// marker_dir (the fencer does not look there: that disk may hang). Pure.
import { dirname, normalize } from 'node:path';

/**
 * Why others can write a directory with this mode and owner, or undefined when only its owner can
 * and its owner is root or `me` (the user brick runs as). Group or others write (a sticky bit
 * included: they can still create the names brick has not made yet), or an owner who is another
 * user (he can chmod it).
 */
export function looseDirProblem(mode: number, uid: number, me: number | undefined): string | undefined {
  const m = mode & 0o7777;
  const who = [m & 0o020 ? 'its group' : '', m & 0o002 ? 'every user' : ''].filter(Boolean).join(' and ');
  if (who) return `has mode ${m.toString(8).padStart(4, '0')}: ${who} can write it`;
  if (uid !== 0 && uid !== me) return `is owned by uid ${uid}, who can change its mode and write it`;
  return undefined;
}

/**
 * The directory of the runtime pools file when it is not marker_dir (its default place), so that
 * it is checked on its own; undefined when it is marker_dir.
 */
export function runtimePoolsDirApart(runtimePoolsFile: string, markerDir: string): string | undefined {
  const bare = (p: string) => normalize(p).replace(/(.)\/+$/, '$1');
  const dir = bare(dirname(runtimePoolsFile));
  return dir === bare(markerDir) ? undefined : dir;
}

/**
 * The directories `mkdir -p dir` made, given the first one it made (what mkdir's recursive mode
 * returns; undefined: it made none): `dir` and each parent up to `first`, deepest first. Each one
 * gets brick's mode (the umask left it out). Pure.
 */
export function dirsMade(dir: string, first: string | undefined): string[] {
  if (first === undefined) return [];
  const out: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    out.push(d);
    if (d === first || d === dirname(d)) return out;
  }
}
