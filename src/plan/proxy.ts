/**
 * Whether a request to a URL goes through a proxy, decided once for the whole run (commands and
 * doctor alike). The rules are undici's EnvHttpProxyAgent's, which ozs3 used before: lower-case
 * variables win over upper-case ones; `https://` uses HTTPS_PROXY, else HTTP_PROXY (unlike curl);
 * NO_PROXY lists host names, `.domain` / `*.domain` suffixes, `host:port`, or `*`. Pure.
 */
export interface ProxyDecision {
  /** The proxy URL to use, or undefined for a direct connection. */
  url?: string | undefined;
  /** The proxy as shown to people: host:port, never its user:password. */
  shown?: string | undefined;
  /** Which variable named it, or which NO_PROXY entry exempted the host. */
  from: string;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

function firstSet(env: NodeJS.ProcessEnv, names: string[]): [string, string] | undefined {
  for (const name of names) {
    const value = env[name];
    if (value) return [name, value];
  }
  return undefined;
}

function showProxy(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(unparseable proxy URL)';
  }
}

export function decideProxy(target: URL, env: NodeJS.ProcessEnv): ProxyDecision {
  const http = firstSet(env, ['http_proxy', 'HTTP_PROXY']);
  const https = firstSet(env, ['https_proxy', 'HTTPS_PROXY']);
  const chosen = target.protocol === 'https:' ? (https ?? http) : http;
  if (!chosen) return { from: 'no HTTPS_PROXY / HTTP_PROXY set' };
  const host = target.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number.parseInt(target.port, 10) || DEFAULT_PORTS[target.protocol] || 0;
  const noProxy = firstSet(env, ['no_proxy', 'NO_PROXY']);
  const value = noProxy?.[1] ?? '';
  if (value === '*') return { from: `${noProxy![0]}=*` };
  for (const raw of value.split(/[,\s]/)) {
    if (!raw) continue;
    const parsed = /^(.+):(\d+)$/.exec(raw);
    const entryHost = (parsed ? parsed[1]! : raw).replace(/^\*?\./, '').toLowerCase();
    const entryPort = parsed ? Number.parseInt(parsed[2]!, 10) : 0;
    if (entryPort && entryPort !== port) continue;
    if (host === entryHost || host.endsWith(`.${entryHost}`)) return { from: `${noProxy![0]} entry '${raw}'` };
  }
  const [name, url] = chosen;
  const note = target.protocol === 'https:' && name.toLowerCase() === 'http_proxy' ? ' (also carries https://)' : '';
  return { url, shown: showProxy(url), from: `${name}${note}` };
}
