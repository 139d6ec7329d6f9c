/** Running MIT's Kerberos tools, and parsing `klist` and `klist -kt` output (run in the C locale: MM/DD/YY HH:MM:SS dates). */
import { execFile } from 'node:child_process';

export interface ToolResult {
  /** False when the tool is not on PATH. */
  found: boolean;
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a Kerberos tool (klist, kinit) with the given env, in the C locale so that its dates and
 * messages have one known shape. Killed after `timeoutMs`.
 */
export function runTool(tool: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      tool,
      args,
      {
        env: { ...env, LC_ALL: 'C', LANG: 'C' },
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 1024 * 1024,
        windowsHide: true,
      },
      (error, stdout, stderr) => {
        const err = error as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
        if (err && err.code === 'ENOENT') {
          resolve({ found: false, code: -1, stdout: '', stderr: '', timedOut: false });
          return;
        }
        const timedOut = Boolean(err?.killed);
        resolve({
          found: true,
          code: typeof err?.code === 'number' ? err.code : err ? -1 : 0,
          stdout: String(stdout),
          stderr: String(stderr),
          timedOut,
        });
      },
    ).stdin?.end();
  });
}

export interface CachedTicket {
  server: string;
  expiresText: string;
  expires: Date | undefined;
  renewUntil: Date | undefined;
  /** `klist -e`: the session key's and the ticket's encryption types. */
  sessionKeyType?: string | undefined;
  ticketType?: string | undefined;
}

export interface TicketCacheListing {
  /** `FILE:/tmp/krb5cc_1000`, `KEYRING:persistent:1000:1000`, … */
  cache: string | undefined;
  principal: string | undefined;
  tickets: CachedTicket[];
}

export interface KeytabEntry {
  kvno: number;
  principal: string;
}

const C_LOCALE_TIME = /^(\d{1,2})\/(\d{1,2})\/(\d{2}|\d{4}) (\d{1,2}):(\d{2}):(\d{2})$/;

/** klist's timestamps are local time; the C locale prints `%x %X`, i.e. 11/23/26 22:27:41. */
export function parseKlistTime(text: string): Date | undefined {
  const m = C_LOCALE_TIME.exec(text.trim());
  if (m) {
    const year = m[3]!.length === 2 ? 2000 + Number(m[3]) : Number(m[3]);
    const date = new Date(year, Number(m[1]) - 1, Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6]));
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  // Other builds and Heimdal: "Nov 23 22:27:41 2026", "23 Nov 2026 22:27:41" …
  const parsed = Date.parse(text);
  return Number.isNaN(parsed) ? undefined : new Date(parsed);
}

const TIME = String.raw`(\d{1,2}/\d{1,2}/\d{2,4} \d{1,2}:\d{2}:\d{2})`;
const TICKET_LINE = new RegExp(String.raw`^${TIME}\s+${TIME}\s+(\S+)\s*$`);
const RENEW_LINE = new RegExp(String.raw`^\s+renew until ${TIME}`);

export function parseKlist(text: string): TicketCacheListing {
  const listing: TicketCacheListing = { cache: undefined, principal: undefined, tickets: [] };
  for (const line of text.split(/\r?\n/)) {
    const cache = /^(?:Ticket|Credentials) cache:\s*(.+)$/.exec(line);
    if (cache) {
      listing.cache = cache[1]!.trim();
      continue;
    }
    const principal = /^\s*(?:Default principal|Principal):\s*(.+)$/.exec(line);
    if (principal) {
      listing.principal = principal[1]!.trim();
      continue;
    }
    const ticket = TICKET_LINE.exec(line);
    if (ticket) {
      listing.tickets.push({
        server: ticket[3]!,
        expiresText: ticket[2]!,
        expires: parseKlistTime(ticket[2]!),
        renewUntil: undefined,
      });
      continue;
    }
    const renew = RENEW_LINE.exec(line);
    const last = listing.tickets.at(-1);
    if (renew && last) last.renewUntil = parseKlistTime(renew[1]!);
    // Its own line, or after "renew until …, " on the same one.
    const etype = /Etype \(skey, tkt\):\s*([^,]+),\s*(\S+)/.exec(line);
    if (etype && last) {
      last.sessionKeyType = etype[1]!.trim();
      last.ticketType = etype[2]!.trim();
    }
  }
  return listing;
}

/**
 * The cached service ticket for `principal`. A principal without a realm (`om/host`, the OM
 * path's default) matches whatever realm the KDC gave it.
 */
export function findServiceTicket(listing: TicketCacheListing, principal: string): CachedTicket | undefined {
  const wanted = principal.toLowerCase().replace(/@$/, '');
  return listing.tickets.find((t) => {
    const server = t.server.toLowerCase();
    return server === wanted || (!wanted.includes('@') && server.startsWith(`${wanted}@`));
  });
}

/** An RC4 (arcfour-hmac) ticket or session key: what JDK 17+ acceptors refuse. */
export function isRc4(ticket: Pick<CachedTicket, 'ticketType' | 'sessionKeyType'>): boolean {
  return /arcfour|rc4/i.test(`${ticket.ticketType ?? ''} ${ticket.sessionKeyType ?? ''}`);
}

/** The ticket-granting ticket for the client's own realm, if the cache holds one. */
export function findTgt(listing: TicketCacheListing): CachedTicket | undefined {
  const realm = listing.principal?.slice(listing.principal.lastIndexOf('@') + 1);
  return (
    listing.tickets.find((t) => realm !== undefined && t.server === `krbtgt/${realm}@${realm}`) ??
    listing.tickets.find((t) => t.server.startsWith('krbtgt/'))
  );
}

/** `klist -kt`: "   1 11/22/26 22:27:44 alice@OZS3.TEST" (one line per key; enctypes repeat it). */
export function parseKeytabListing(text: string): KeytabEntry[] {
  const entries: KeytabEntry[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(\d+)\s+\S+\s+\S+\s+(\S+)(?:\s+\(.*\))?\s*$/.exec(line);
    if (m) entries.push({ kvno: Number(m[1]), principal: m[2]! });
  }
  return entries;
}

/** One entry per principal, with its newest key version, in keytab order. */
export function keytabPrincipals(entries: KeytabEntry[]): KeytabEntry[] {
  const byName = new Map<string, KeytabEntry>();
  for (const entry of entries) {
    const seen = byName.get(entry.principal);
    if (!seen || entry.kvno > seen.kvno) byName.set(entry.principal, { ...entry });
  }
  return [...byName.values()];
}
