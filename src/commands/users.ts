/** The users a command acts on: `--user` repeated and `--users-file FILE|-`. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LocalFileError, UsageError } from '../errors.js';
import type { Deps } from '../deps.js';

export function parseUsersText(text: string, source: string): string[] {
  const users: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const name = line.trim();
    if (name === '' || name.startsWith('#')) return;
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(name))
      throw new UsageError(`${source} line ${index + 1}: a user name holds a control character`);
    users.push(name);
  });
  return users;
}

export function validateUserName(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (name === '' || /[\u0000-\u001f\u007f]/.test(name))
    throw new UsageError('a user name must be non-empty and hold no control characters');
  return name;
}

/** Returns the users in input order, or [] for "the caller's own secret". Duplicates are refused. */
export async function resolveUsers(
  userFlags: string[] | undefined,
  usersFile: string | undefined,
  deps: Deps,
): Promise<string[]> {
  const users = (userFlags ?? []).map(validateUserName);
  if (usersFile !== undefined) {
    let text: string;
    if (usersFile === '-') {
      text = await deps.io.readStdin();
    } else {
      try {
        text = await readFile(resolve(deps.cwd, usersFile), 'utf8');
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'error';
        throw new LocalFileError('USERS_FILE_UNREADABLE', `cannot read users file ${usersFile} (${code})`, {
          cause: error,
        });
      }
    }
    const fromFile = parseUsersText(text, usersFile === '-' ? 'stdin' : usersFile);
    if (fromFile.length === 0)
      throw new UsageError(`the users file ${usersFile === '-' ? '(stdin)' : usersFile} names no user`);
    users.push(...fromFile);
  }
  const seen = new Set<string>();
  for (const user of users) {
    if (seen.has(user)) throw new UsageError(`user '${user}' is named twice`);
    seen.add(user);
  }
  return users;
}

/** Runs `task` over `items` with at most `limit` in flight; results keep input order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
