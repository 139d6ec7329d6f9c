/**
 * Just enough of MIT's profile format to tell which krb5.conf is used, its default realm and how a
 * host maps to a realm ([domain_realm], as krb5_get_host_realm walks it). Pure parsing + file reads.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Krb5Config {
  /** The files named by KRB5_CONFIG (colon-separated) or the default, in precedence order. */
  files: string[];
  /** Where the list came from: 'KRB5_CONFIG' or 'default'. */
  source: 'KRB5_CONFIG' | 'default';
  /** Files (and included files) that were read. */
  read: string[];
  /** Named files that could not be read, with the reason. */
  unreadable: { file: string; code: string }[];
  /** First value of `[section] name = value` at the top level of a section. */
  get(section: string, name: string): string | undefined;
  /** Realms with a `[realms] NAME = { … }` block. */
  realms: string[];
}

export const DEFAULT_KRB5_CONFIG = '/etc/krb5.conf';

interface ProfileData {
  relations: Map<string, Map<string, string>>;
  realms: Set<string>;
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', b: '\b' })[c] ?? c);
  }
  return v;
}

/** Parses one profile file's text into `data`; earlier values win, as profile_get_string does. */
export function parseProfile(
  text: string,
  data: ProfileData = { relations: new Map(), realms: new Set() },
): ProfileData {
  let section: string | undefined;
  let depth = 0;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]\*?$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      depth = 0;
      continue;
    }
    if (/^}\*?$/.test(line)) {
      depth = Math.max(0, depth - 1);
      continue;
    }
    const relation = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (!relation || section === undefined) continue;
    const name = relation[1]!.replace(/\*$/, '').trim();
    const value = relation[2]!;
    if (value.trim() === '{') {
      if (depth === 0 && section === 'realms') data.realms.add(name);
      depth++;
      continue;
    }
    if (depth > 0) continue;
    let names = data.relations.get(section);
    if (!names) data.relations.set(section, (names = new Map<string, string>()));
    if (!names.has(name)) names.set(name, unquote(value.replace(/\*$/, '')));
  }
  return data;
}

/**
 * A profile file with its include/includedir directives expanded in place: MIT parses an included
 * file as if it appeared at that point, so its relations come before the ones after the directive.
 * The parent's section resumes after it.
 */
async function expandProfileFile(file: string, read: string[], seen: Set<string>): Promise<string> {
  if (seen.has(file) || seen.size > 64) return '';
  seen.add(file);
  const text = (await readFile(file, 'utf8')).slice(0, 1024 * 1024);
  read.push(file);
  const out: string[] = [];
  let section: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const directive = /^(include|includedir)\s+(.+?)\s*$/.exec(line);
    if (!directive) {
      section = /^\s*\[([^\]]+)\]/.exec(line)?.[1] ?? section;
      out.push(line);
      continue;
    }
    try {
      if (directive[1] === 'include') {
        out.push(await expandProfileFile(directive[2]!, read, seen));
      } else {
        // MIT reads files whose names are only alphanumerics, dashes and underscores, or end in .conf.
        const names = (await readdir(directive[2]!))
          .filter((n) => /^[A-Za-z0-9_-]+$/.test(n) || /\.conf$/.test(n))
          .sort();
        for (const name of names) out.push(await expandProfileFile(join(directive[2]!, name), read, seen));
      }
    } catch {
      // an unreadable include: MIT fails too, but the rest still tells the user something
    }
    if (section !== undefined) out.push(`[${section}]`);
  }
  return out.join('\n');
}

export async function loadKrb5Config(env: NodeJS.ProcessEnv): Promise<Krb5Config> {
  const fromEnv = env.KRB5_CONFIG !== undefined && env.KRB5_CONFIG !== '';
  const files = fromEnv ? env.KRB5_CONFIG!.split(':').filter(Boolean) : [DEFAULT_KRB5_CONFIG];
  const data: ProfileData = { relations: new Map(), realms: new Set() };
  const read: string[] = [];
  const unreadable: { file: string; code: string }[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    try {
      parseProfile(await expandProfileFile(file, read, seen), data);
    } catch (error) {
      unreadable.push({ file, code: (error as NodeJS.ErrnoException).code ?? 'error' });
    }
  }
  return {
    files,
    source: fromEnv ? 'KRB5_CONFIG' : 'default',
    read,
    unreadable,
    get: (section, name) => data.relations.get(section)?.get(name),
    realms: [...data.realms],
  };
}

export interface HostRealm {
  realm: string;
  /** The [domain_realm] key that matched, e.g. `.example.com`. */
  entry: string;
}

/**
 * krb5_get_host_realm's [domain_realm] walk: the host itself, then `.b.c`, `b.c`, `.c`, `c` for
 * `a.b.c`. Undefined when nothing matches (MIT then asks the client realm's KDC for a referral and
 * finally falls back to the default realm).
 */
export function hostRealm(config: Pick<Krb5Config, 'get'>, host: string): HostRealm | undefined {
  let cp: string | undefined = host
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
  while (cp) {
    const realm = config.get('domain_realm', cp);
    if (realm) return { realm, entry: cp };
    if (cp.startsWith('.')) {
      cp = cp.slice(1);
    } else {
      const dot = cp.indexOf('.');
      cp = dot >= 0 ? cp.slice(dot) : undefined;
    }
  }
  return undefined;
}

export function realmOf(principal: string | undefined): string | undefined {
  if (!principal) return undefined;
  const at = principal.lastIndexOf('@');
  return at >= 0 ? principal.slice(at + 1) : undefined;
}
