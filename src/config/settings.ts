/**
 * Where the endpoint and profile defaults come from, in order: flags, OZS3_ENDPOINT, a named
 * cluster preset in ozs3's own config file (`[cluster NAME]`, ini), then Ozone's own
 * ozone-site.xml in $OZONE_CONF_DIR.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import type { Deps } from '../deps.js';

export interface ClusterSettings {
  endpoint?: string | undefined;
  s3Endpoint?: string | undefined;
  region?: string | undefined;
  spn?: string | undefined;
  cacert?: string | undefined;
}

export interface ResolvedSettings extends ClusterSettings {
  /** Where the endpoint came from, for --verbose and doctor. */
  endpointSource?: string | undefined;
}

export function configFilePath(env: NodeJS.ProcessEnv, homedir: string): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir, '.config');
  return join(base, 'ozs3', 'config');
}

const PRESET_KEYS: Record<string, keyof ClusterSettings> = {
  endpoint: 'endpoint',
  s3_endpoint: 's3Endpoint',
  region: 'region',
  spn: 'spn',
  cacert: 'cacert',
};

/** Reads `[cluster NAME]` from ozs3's config file. */
export async function loadClusterPreset(
  name: string,
  env: NodeJS.ProcessEnv,
  homedir: string,
): Promise<ClusterSettings> {
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
  const { parse } = await import('ini');
  const sections = parse(text) as Record<string, unknown>;
  const section = Object.entries(sections).find(
    ([key]) => /^cluster\s+/.test(key) && key.replace(/^cluster\s+/, '').replace(/^"(.*)"$/, '$1') === name,
  )?.[1];
  if (!section || typeof section !== 'object') {
    const known = Object.keys(sections)
      .filter((k) => /^cluster\s+/.test(k))
      .map((k) => k.replace(/^cluster\s+/, ''));
    throw new UsageError(`no [cluster ${name}] in ${path}`, {
      hint: known.length ? `known clusters: ${known.join(', ')}` : undefined,
    });
  }
  const preset: ClusterSettings = {};
  for (const [key, value] of Object.entries(section as Record<string, unknown>)) {
    const field = PRESET_KEYS[key.toLowerCase()];
    if (!field)
      throw new UsageError(`${path}: unknown key '${key}' in [cluster ${name}]`, {
        hint: `known keys: ${Object.keys(PRESET_KEYS).join(', ')}`,
      });
    if (typeof value !== 'string' || value === '')
      throw new UsageError(`${path}: '${key}' in [cluster ${name}] needs a value`);
    preset[field] = value;
  }
  return preset;
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

function addressToUrl(scheme: 'https' | 'http', address: string | undefined): string | undefined {
  if (!address) return undefined;
  const m = /^([^:]+|\[[^\]]+\]):(\d+)$/.exec(address.trim());
  if (!m) return undefined;
  // 0.0.0.0 says where the gateway listens, not where to reach it.
  if (m[1] === '0.0.0.0' || m[1] === '[::]' || m[1]!.includes('${')) return undefined;
  return `${scheme}://${m[1]}:${m[2]}`;
}

/** The secret endpoint and the S3 data endpoint an ozone-site.xml names, if any. */
export function discoverFromOzoneSite(props: Map<string, string>): ClusterSettings & { key?: string } {
  const s3Endpoint =
    addressToUrl('https', props.get('ozone.s3g.https-address')) ??
    addressToUrl('http', props.get('ozone.s3g.http-address'));
  const candidates: [string, 'https' | 'http'][] = [
    ['ozone.s3g.webadmin.https-address', 'https'],
    ['ozone.s3g.webadmin.http-address', 'http'],
    // Ozone 1.4.x serves /secret beside the S3 API.
    ['ozone.s3g.https-address', 'https'],
    ['ozone.s3g.http-address', 'http'],
  ];
  for (const [key, scheme] of candidates) {
    const endpoint = addressToUrl(scheme, props.get(key));
    if (endpoint) return { endpoint, s3Endpoint, key };
  }
  return { s3Endpoint };
}

async function readOzoneSite(
  env: NodeJS.ProcessEnv,
): Promise<{ path: string; props: Map<string, string> } | undefined> {
  const dir = env.OZONE_CONF_DIR;
  if (!dir) return undefined;
  const path = join(dir, 'ozone-site.xml');
  try {
    const text = await readFile(path, 'utf8');
    return { path, props: parseHadoopConfig(text.slice(0, 4 * 1024 * 1024)) };
  } catch {
    return undefined;
  }
}

/** Settings for this run; flags are applied by the caller on top. */
export async function resolveSettings(
  opts: { endpoint?: string | undefined; cluster?: string | undefined },
  deps: Pick<Deps, 'env' | 'homedir'>,
): Promise<ResolvedSettings> {
  const cluster = opts.cluster ?? (deps.env.OZS3_CLUSTER || undefined);
  const preset = cluster ? await loadClusterPreset(cluster, deps.env, deps.homedir) : {};
  const resolved: ResolvedSettings = { ...preset };
  if (opts.endpoint) {
    resolved.endpoint = opts.endpoint;
    resolved.endpointSource = '--endpoint';
  } else if (deps.env.OZS3_ENDPOINT) {
    resolved.endpoint = deps.env.OZS3_ENDPOINT;
    resolved.endpointSource = 'OZS3_ENDPOINT';
  } else if (preset.endpoint) {
    resolved.endpointSource = `[cluster ${cluster}] in ${configFilePath(deps.env, deps.homedir)}`;
  }
  if (!resolved.endpoint) {
    // Only when the endpoint itself comes from ozone-site.xml is its S3 address the same cluster's.
    const site = await readOzoneSite(deps.env);
    const found = site && discoverFromOzoneSite(site.props);
    if (site && found?.endpoint) {
      resolved.endpoint = found.endpoint;
      resolved.endpointSource = `${found.key} in ${site.path}`;
      resolved.s3Endpoint ??= found.s3Endpoint;
    }
  }
  return resolved;
}
