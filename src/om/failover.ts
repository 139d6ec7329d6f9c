/**
 * Where one logical call goes next after a failure, after Ozone's OMFailoverProxyProviderBase
 * (getRetryPolicy, getWaitTime): a not-leader answer naming a configured node goes straight there,
 * else to the next node in order; a leader that is not ready yet is asked again with a linearly
 * growing wait; an unreachable OM is skipped. Once every node was tried in a round, wait before the
 * next round. Unlike Java's client the list is not shuffled, so the configured order is the order
 * tried (deterministic, and the first node is usually the leader an admin names first).
 */
import type { OmNode } from './target.js';

export type FailureKind = 'not-leader' | 'not-ready' | 'unreachable';

export interface Failover {
  next: number;
  waitMs: number;
}

export interface FailoverOptions {
  /** Ozone's ozone.client.wait.between.retries.millis (default 2000 ms). */
  waitBetweenRetriesMs: number;
  /** Complete rounds over unreachable nodes allowed (--retries). */
  retries: number;
  /** Jitter source for the unreachable backoff. */
  random: () => number;
}

/** A safety net beside the deadline, like Java's ozone.client.failover.max.attempts. */
export const MAX_FAILOVERS = 50;

/** The bookkeeping of one logical call (its retries keep the call id; see service.ts). */
export class FailoverPlan {
  private readonly attempted = new Set<number>();
  private sameNodeAttempts = 0;
  private failovers = 0;
  private unreachableRounds = 0;

  constructor(
    private readonly nodes: readonly OmNode[],
    private readonly opts: FailoverOptions,
  ) {}

  /** The configured index of a node id, if it is one of ours. */
  indexOf(nodeId: string | undefined): number | undefined {
    if (nodeId === undefined) return undefined;
    const i = this.nodes.findIndex((n) => n.nodeId === nodeId);
    return i < 0 ? undefined : i;
  }

  /** Undefined: give up (the caller reports the failure it has). */
  after(kind: FailureKind, node: number, suggested?: string): Failover | undefined {
    if (++this.failovers > MAX_FAILOVERS) return undefined;
    const count = this.nodes.length;
    let next: number;
    if (kind === 'not-ready') {
      next = node;
    } else if (kind === 'not-leader') {
      const leader = this.indexOf(suggested);
      next = leader !== undefined && leader !== node ? leader : (node + 1) % count;
    } else {
      next = (node + 1) % count;
    }
    if (next === node) {
      // The same OM again: Java waits base × attempts on it.
      this.attempted.clear();
      this.sameNodeAttempts++;
      if (kind === 'unreachable') return this.unreachableRound(next);
      return { next, waitMs: this.opts.waitBetweenRetriesMs * this.sameNodeAttempts };
    }
    this.sameNodeAttempts = 0;
    this.attempted.add(node);
    if (this.attempted.size < count) return { next, waitMs: 0 };
    // Every OM was tried once in this round: pause before the next.
    this.attempted.clear();
    if (kind === 'unreachable') return this.unreachableRound(next);
    return { next, waitMs: this.opts.waitBetweenRetriesMs };
  }

  /** Exponential backoff with full jitter (250 ms, 500 ms … 4 s), as the REST client does. */
  private unreachableRound(next: number): Failover | undefined {
    if (this.unreachableRounds >= this.opts.retries) return undefined;
    const waitMs = Math.round(this.opts.random() * Math.min(4000, 250 * 2 ** this.unreachableRounds));
    this.unreachableRounds++;
    return { next, waitMs };
  }
}
