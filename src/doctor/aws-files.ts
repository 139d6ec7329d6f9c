/** Check 8: the AWS config and credentials files that `--write-aws` edits. */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitCode } from '../errors.js';
import { resolveAwsPaths } from '../aws/write-profile.js';
import { fail, ok, warn, type CheckResult } from './check.js';

interface FileFinding {
  text: string;
  problem?: { detail: string; fix: string } | undefined;
  loose?: { detail: string; fix: string } | undefined;
}

function mode(m: number): string {
  return (m & 0o777).toString(8).padStart(4, '0');
}

/** The nearest existing directory above `file`, and whether this user may create entries in it. */
async function writableAncestor(file: string): Promise<{ dir: string; writable: boolean; code?: string }> {
  let dir = path.dirname(file);
  for (;;) {
    try {
      const info = await fs.stat(dir);
      if (!info.isDirectory()) return { dir, writable: false, code: 'ENOTDIR' };
      await fs.access(dir, constants.W_OK | constants.X_OK);
      return { dir, writable: true };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      const parent = path.dirname(dir);
      if (code !== 'ENOENT' || parent === dir) return { dir, writable: false, code };
      dir = parent;
    }
  }
}

async function inspect(kind: 'config' | 'credentials', file: string, shown: string): Promise<FileFinding> {
  let info: import('node:fs').Stats;
  try {
    info = await fs.stat(file); // through a symlink: ozs3 writes its target
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code !== 'ENOENT') {
      return {
        text: `${shown} (${code})`,
        problem: { detail: `cannot read ${shown} (${code})`, fix: `check the permissions of ${path.dirname(file)}` },
      };
    }
    const ancestor = await writableAncestor(file);
    if (!ancestor.writable) {
      return {
        text: `${shown} (absent)`,
        problem: {
          detail: `${shown} does not exist and cannot be created: ${ancestor.dir} is not writable (${ancestor.code ?? 'EACCES'})`,
          fix: `make ${ancestor.dir} writable, or set ${kind === 'config' ? 'AWS_CONFIG_FILE' : 'AWS_SHARED_CREDENTIALS_FILE'} to a writable path`,
        },
      };
    }
    return { text: `${shown} (absent: --write-aws creates it)` };
  }
  if (!info.isFile())
    return {
      text: shown,
      problem: {
        detail: `${shown} is not a regular file`,
        fix: `move it aside; ozs3 and the AWS CLI expect a file there`,
      },
    };
  const problems: string[] = [];
  try {
    await fs.access(file, constants.R_OK);
  } catch {
    problems.push('not readable');
  }
  try {
    await fs.access(file, constants.W_OK);
  } catch {
    problems.push('not writable');
  }
  // ozs3 replaces the file by rename: its directory must be writable too.
  try {
    await fs.access(path.dirname(file), constants.W_OK | constants.X_OK);
  } catch {
    problems.push(`its directory ${path.dirname(file)} is not writable`);
  }
  const text = `${shown} (${mode(info.mode)})`;
  if (problems.length > 0) {
    return {
      text,
      problem: {
        detail: `${shown}: ${problems.join(', ')} (mode ${mode(info.mode)})`,
        fix: `check the owner and permissions of ${file} and its directory`,
      },
    };
  }
  if (kind === 'credentials' && info.mode & 0o077) {
    return {
      text,
      loose: { detail: `${shown} is readable by group or others (${mode(info.mode)})`, fix: `chmod 600 ${file}` },
    };
  }
  return { text };
}

export async function checkAwsFiles(env: NodeJS.ProcessEnv, homedir: string): Promise<CheckResult> {
  const name = 'aws files';
  const paths = resolveAwsPaths(env, homedir);
  const show = (file: string) =>
    homedir && file.startsWith(`${homedir}/`) ? `~/${file.slice(homedir.length + 1)}` : file;
  const [config, credentials] = await Promise.all([
    inspect('config', paths.config, show(paths.config)),
    inspect('credentials', paths.credentials, show(paths.credentials)),
  ]);
  const detail = `${config.text}, ${credentials.text}`;
  const problem = config.problem ?? credentials.problem;
  if (problem) return fail(name, ExitCode.localFiles, problem.detail, problem.fix);
  const loose = config.loose ?? credentials.loose;
  if (loose) return warn(name, `${detail}; ${loose.detail}`, loose.fix);
  return ok(name, detail);
}
