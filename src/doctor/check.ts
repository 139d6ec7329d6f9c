/** What one doctor check reports, and the helpers every check shares. */
import type { ExitCodeValue } from '../errors.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** One line: what was found. Never a secret, token or cookie value. */
  detail: string;
  /** One line: what to do about it (warn and fail). */
  fix?: string | undefined;
  /** The exit status a failure maps to (docs/cli.md exit table). */
  exitCode?: ExitCodeValue | undefined;
}

export const ok = (name: string, detail: string): CheckResult => ({ name, status: 'ok', detail });
export const warn = (name: string, detail: string, fix?: string): CheckResult => ({
  name,
  status: 'warn',
  detail,
  fix,
});
export const skip = (name: string, detail: string): CheckResult => ({ name, status: 'skip', detail });
export const fail = (name: string, exitCode: ExitCodeValue, detail: string, fix?: string): CheckResult => ({
  name,
  status: 'fail',
  detail,
  fix,
  exitCode,
});

/** Resolves to the check's result, or to `onTimeout()` when it takes longer than `ms`. */
export async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** "in 23h59m", "3 min ago" — for ticket and certificate lifetimes. */
export function describeRemaining(ms: number): string {
  const abs = Math.abs(ms);
  const minutes = Math.floor(abs / 60_000);
  let text: string;
  if (abs < 60_000) text = `${Math.round(abs / 1000)} s`;
  else if (minutes < 60) text = `${minutes} min`;
  else if (minutes < 48 * 60) text = `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
  else text = `${Math.floor(minutes / 1440)} days`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** Local time as `2026-11-23 22:27:41` (what the user's klist and clock show). */
export function formatLocalTime(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}
