/** The users a command acts on: `--user` repeated and `--users-file FILE|-`. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LocalFileError, UsageError, sanitizeText } from '../errors.js';
import type { Deps } from '../deps.js';

/** A user as named, and where (for messages about duplicates and bad names). */
interface NamedUser {
  name: string;
  where: string;
}

/**
 * What cannot be a Kerberos principal or an Ozone access id: blanks and control characters
 * (a space is almost always a pasted comment or two names on one line).
 */
function nameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'holds a control character';
  if (/\s/.test(name)) return 'holds a blank';
  return undefined;
}

/** One user per line; `#` starts a comment anywhere on a line; blanks around a name are trimmed. */
export function parseUsersText(text: string, source: string): NamedUser[] {
  const users: NamedUser[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const name = line.replace(/#.*$/, '').trim();
    if (name === '') return;
    const where = `${source}:${index + 1}`;
    const problem = nameProblem(name);
    if (problem)
      throw new UsageError(`${where}: the user name '${sanitizeText(name)}' ${problem}`, {
        hint: 'one user per line; # starts a comment',
      });
    users.push({ name, where });
  });
  return users;
}

export function validateUserName(name: string, where = '--user'): string {
  const problem = nameProblem(name);
  if (problem) throw new UsageError(`${where}: the user name '${sanitizeText(name)}' ${problem}`);
  return name;
}

/** The users in input order, or [] for "the caller's own secret". A name given twice is refused, naming both places. */
export async function resolveUsers(
  userFlags: string[] | undefined,
  usersFile: string | undefined,
  deps: Pick<Deps, 'io' | 'cwd'>,
): Promise<string[]> {
  const users: NamedUser[] = (userFlags ?? []).map((name) => ({ name: validateUserName(name), where: `-u ${name}` }));
  if (usersFile !== undefined) {
    let text: string;
    const source = usersFile === '-' ? 'stdin' : usersFile;
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
    const fromFile = parseUsersText(text, source);
    if (fromFile.length === 0) throw new UsageError(`the users file ${source} names no user`);
    users.push(...fromFile);
  }
  const seen = new Map<string, string>();
  for (const user of users) {
    const first = seen.get(user.name);
    if (first) {
      throw new UsageError(`user '${sanitizeText(user.name)}' is named twice: ${first} and ${user.where}`, {
        hint: 'name each user once',
      });
    }
    seen.set(user.name, user.where);
  }
  return users.map((u) => u.name);
}
