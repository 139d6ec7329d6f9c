/**
 * The two files a connection plan may read: ozs3's own config file (`[cluster NAME]` presets, ini)
 * and Ozone's `ozone-site.xml` in $OZONE_CONF_DIR. I/O only; plan.ts decides what the values mean.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

/** Keys a preset may hold, and the field each fills. */
export const PRESET_KEYS = {
  endpoint: 'endpoint',
  om: 'om',
  om_service_id: 'omServiceId',
  s3_endpoint: 's3Endpoint',
  region: 'region',
  spn: 'spn',
  cacert: 'cacert',
} as const;

export type PresetField = (typeof PRESET_KEYS)[keyof typeof PRESET_KEYS];
export type PresetValues = Partial<Record<PresetField, string>>;

export interface ClusterPreset {
  name: string;
  /** The config file it came from. */
  path: string;
  values: PresetValues;
}

export interface OzoneSite {
  path: string;
  props: ReadonlyMap<string, string>;
  /** Why the file gave nothing (absent, empty, not Hadoop XML): said when nothing else names a target. */
  problem?: string | undefined;
}

export function configFilePath(env: NodeJS.ProcessEnv, homedir: string): string {
  const base = env.XDG_CONFIG_HOME ? env.XDG_CONFIG_HOME : join(homedir, '.config');
  return join(base, 'ozs3', 'config');
}

/** Reads `[cluster NAME]` (or `[cluster "NAME"]`) from ozs3's config file. */
export async function loadClusterPreset(name: string, env: NodeJS.ProcessEnv, homedir: string): Promise<ClusterPreset> {
  const path = configFilePath(env, homedir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `--cluster ${name}: no ozs3 config file at ${path}`
        : `cannot read the ozs3 config file ${path} (${code ?? 'error'})`,
      { hint: `define it there:  [cluster ${name}]  endpoint = https://s3g.example.com:19879` },
    );
  }
  // ini is CommonJS: only `default` is sure to exist (in the bundle the namespace has nothing else).
  const { parse } = (await import('ini')).default;
  const sections = parse(text) as Record<string, unknown>;
  const clusterName = (key: string) => key.replace(/^cluster\s+/, '').replace(/^"(.*)"$/, '$1');
  const section = Object.entries(sections).find(([key]) => /^cluster\s+/.test(key) && clusterName(key) === name)?.[1];
  if (!section || typeof section !== 'object') {
    const known = Object.keys(sections)
      .filter((k) => /^cluster\s+/.test(k))
      .map(clusterName);
    throw new UsageError(`no [cluster ${name}] in ${path}`, {
      hint: known.length ? `known clusters: ${known.join(', ')}` : undefined,
    });
  }
  const values: PresetValues = {};
  for (const [key, value] of Object.entries(section as Record<string, unknown>)) {
    const field = (PRESET_KEYS as Record<string, PresetField | undefined>)[key.toLowerCase()];
    if (!field) {
      throw new UsageError(`${path}: unknown key '${key}' in [cluster ${name}]`, {
        hint: `known keys: ${Object.keys(PRESET_KEYS).join(', ')}`,
      });
    }
    if (typeof value !== 'string' || value === '')
      throw new UsageError(`${path}: '${key}' in [cluster ${name}] needs a value`);
    values[field] = value;
  }
  return { name, path, values };
}

/** Hadoop configuration XML: <property><name>…</name><value>…</value></property>. */
export function parseHadoopConfig(xml: string): Map<string, string> {
  const props = new Map<string, string>();
  const unescape = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&')
      .trim();
  for (const m of xml.matchAll(/<property\b[^>]*>([\s\S]*?)<\/property\s*>/g)) {
    const body = m[1]!;
    const name = /<name>([\s\S]*?)<\/name>/.exec(body)?.[1];
    const value = /<value>([\s\S]*?)<\/value>/.exec(body)?.[1] ?? (/<value\s*\/>/.test(body) ? '' : undefined);
    if (name !== undefined && value !== undefined) props.set(unescape(name), unescape(value));
  }
  return props;
}

/**
 * $OZONE_CONF_DIR/ozone-site.xml, when OZONE_CONF_DIR is set. A file that is absent or says nothing
 * is not an error here (flags may name the target); its `problem` says why, for the error that
 * follows when nothing does.
 */
export async function readOzoneSite(env: NodeJS.ProcessEnv): Promise<OzoneSite | undefined> {
  const dir = env.OZONE_CONF_DIR;
  if (!dir) return undefined;
  const path = join(dir, 'ozone-site.xml');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const dirExists = await stat(dir).then(
        (st) => st.isDirectory(),
        () => false,
      );
      const problem = dirExists
        ? `OZONE_CONF_DIR=${dir} has no ozone-site.xml`
        : `OZONE_CONF_DIR=${dir} is not a directory`;
      return { path, props: new Map(), problem };
    }
    throw new UsageError(`cannot read ${path} (${code ?? 'error'})`, { hint: 'check OZONE_CONF_DIR' });
  }
  const props = parseHadoopConfig(text.slice(0, 4 * 1024 * 1024));
  let problem: string | undefined;
  if (props.size === 0) {
    if (text.trim() === '') problem = `${path} is empty`;
    else if (!/<configuration\b/.test(text))
      problem = `${path} is not a Hadoop configuration file (no <configuration>)`;
    else problem = `${path} has no <property> with a <name> and a <value>`;
  }
  return { path, props, problem };
}
