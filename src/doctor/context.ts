/** What every doctor check is given: the plan, the world, and facts read once before the checks. */
import type { Deps } from '../deps.js';
import type { ConnectionPlan } from '../plan/plan.js';
import type { Krb5Config } from './krb5-conf.js';

export interface DoctorContext {
  plan: ConnectionPlan;
  deps: Deps;
  /** The environment as the user gave it (keytab login later rewrites KRB5CCNAME in deps.env). */
  userEnv: NodeJS.ProcessEnv;
  /** Each check's deadline. */
  timeoutMs: number;
  trace?: ((line: string) => void) | undefined;
  /** krb5.conf as MIT would read it (undefined when unreadable). */
  krb5: Krb5Config | undefined;
  /** Registers a cleanup to run once the report is complete (a dispatcher to close). */
  defer(cleanup: () => Promise<void>): void;
}
