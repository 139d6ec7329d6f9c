// Build: type-check and declarations with tsc, then one minified ESM bundle with lazy chunks
// (esbuild), then the help texts commander renders, stored for the fast --help path.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}/dist`, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/tsconfig.json`, '--emitDeclarationOnly'],
  { stdio: 'inherit' },
);

await build({
  entryPoints: { main: `${root}/src/main.ts` },
  outdir: `${root}/dist`,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'linked',
  // CommonJS dependencies (undici, commander) call require() for Node built-ins.
  banner: {
    js: "import{createRequire as __ozs3CreateRequire}from'node:module';const require=__ozs3CreateRequire(import.meta.url);",
  },
  // Native addons cannot be bundled (koffi bundled into ESM fails with __filename is not defined).
  external: ['kerberos', 'koffi'],
  logLevel: 'warning',
  plugins: [
    {
      // commander loads node:child_process (and with it dgram and net) for executable subcommands,
      // which ozs3 does not have; doctor, which runs klist, imports it itself.
      name: 'commander-without-child-process',
      setup(b) {
        b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
          /[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'ozs3-stub' } : undefined,
        );
        b.onLoad({ filter: /.*/, namespace: 'ozs3-stub' }, () => ({
          contents: "module.exports = { spawn () { throw new Error('ozs3 has no executable subcommands') } }",
          loader: 'js',
        }));
      },
    },
    {
      // undici's HTTP/2 client loads node:http2 (~8 ms) at start-up; ozs3 speaks HTTP/1.1 only.
      name: 'no-http2',
      setup(b) {
        b.onLoad({ filter: /undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/ }, () => ({
          contents: "module.exports = function connectH2 () { throw new Error('HTTP/2 is not used by ozs3') }",
          loader: 'js',
        }));
      },
    },
  ],
});

// bin/ozs3 (CommonJS, so plain --help never starts the ESM loader) serves help from this.
await build({
  entryPoints: [`${root}/src/fast-path.ts`],
  outfile: `${root}/dist/fast-path.cjs`,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  logLevel: 'warning',
});

const { renderHelpTexts } = await import(`${root}/dist/main.js`);
writeFileSync(`${root}/dist/help.json`, `${JSON.stringify(await renderHelpTexts(), null, 1)}\n`);
