/** What the outside world is, handed to every command so tests can replace it. */
import type { Dispatcher } from 'undici';
import type { IO } from './io.js';
import type { ConnectionPlan } from './plan/plan.js';
import type { SecretService } from './service/secret-service.js';

export type InterruptSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

export interface Deps {
  io: IO;
  /** The process environment; keytab login writes KRB5CCNAME / KRB5_CLIENT_KTNAME into it. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  homedir: string;
  /**
   * Calls `handler` on SIGINT / SIGTERM / SIGHUP until the returned function is called; while a
   * handler is installed the signal no longer ends the process (the batch decides).
   */
  onInterrupt(handler: (signal: InterruptSignal) => void): () => void;
  /** Replaces the transport (in-process command tests: a fake that fails on unexpected calls). */
  openService?: ((plan: ConnectionPlan, opts: { connections: number }) => Promise<SecretService>) | undefined;
  /** Replaces the HTTP dispatcher (undici MockAgent in unit tests). */
  dispatcher?: Dispatcher | undefined;
}

/** The process's signals, for main.ts. */
export function processInterrupts(handler: (signal: InterruptSignal) => void): () => void {
  const signals: InterruptSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}
