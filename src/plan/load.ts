/** Reads what the plan needs from disk (the preset, ozone-site.xml), then builds it. */
import type { Deps } from '../deps.js';
import { loadClusterPreset, readOzoneSite } from './config-files.js';
import { DEFAULT_TIMEOUT_SECONDS, buildPlan, type ConnectionFlags, type ConnectionPlan } from './plan.js';

export async function loadPlan(
  flags: ConnectionFlags,
  deps: Pick<Deps, 'env' | 'cwd' | 'homedir'>,
  defaultTimeoutSeconds = DEFAULT_TIMEOUT_SECONDS,
): Promise<ConnectionPlan> {
  const cluster = flags.cluster ?? (deps.env.OZS3_CLUSTER || undefined);
  const preset = cluster ? await loadClusterPreset(cluster, deps.env, deps.homedir) : undefined;
  // An explicit --endpoint needs nothing from Ozone's config: do not fail on a file it never reads.
  const restExplicit = Boolean(flags.endpoint || deps.env.OZS3_ENDPOINT);
  const site = restExplicit ? undefined : await readOzoneSite(deps.env);
  return buildPlan({ flags, env: deps.env, cwd: deps.cwd, preset, site, defaultTimeoutSeconds });
}
