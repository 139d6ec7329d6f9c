/**
 * House rules of the source tree that a reviewer would otherwise check by hand
 * (docs/architecture.md): no import cycles, only commands in src/commands, no casts to `never`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Runtime imports between source files, static and dynamic (type-only imports are erased). */
async function importGraph(): Promise<Map<string, string[]>> {
  const result = await build({
    entryPoints: [join(root, 'src/main.ts')],
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    outdir: '/nonexistent',
    write: false,
    metafile: true,
    external: ['kerberos', 'koffi'],
    logLevel: 'silent',
    packages: 'external',
  });
  const graph = new Map<string, string[]>();
  for (const [file, input] of Object.entries(result.metafile.inputs)) {
    if (!file.startsWith('src/')) continue;
    graph.set(
      file,
      input.imports.map((i) => i.path).filter((p) => p.startsWith('src/')),
    );
  }
  return graph;
}

function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const walk = (node: string, path: string[]): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node];
    state.set(node, 'open');
    for (const next of graph.get(node) ?? []) {
      const cycle = walk(next, [...path, node]);
      if (cycle) return cycle;
    }
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = walk(node, []);
    if (cycle) return cycle;
  }
  return undefined;
}

describe('the source tree', () => {
  it('has no import cycle, static or dynamic', async () => {
    const graph = await importGraph();
    expect(graph.size).toBeGreaterThan(40);
    expect(findCycle(graph)).toBeUndefined();
  });

  it('finds a planted cycle (the check works)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
    ]);
    expect(findCycle(graph)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('keeps only commands in src/commands: each exports its runX', () => {
    for (const file of sourceFiles('src/commands')) {
      expect(readFileSync(join(root, file), 'utf8'), file).toMatch(/^export (async )?function run[A-Z]\w*\(/m);
    }
  });

  it('casts nothing to never', () => {
    for (const file of sourceFiles('src'))
      expect(readFileSync(join(root, file), 'utf8'), file).not.toMatch(/as never\b/);
  });
});
