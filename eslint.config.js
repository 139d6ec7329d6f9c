// ESLint (flat config): typescript-eslint's type-aware recommended rules over src/ and test/.
// Formatting is Prettier's job (npm run lint runs both); these rules are about correctness.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Node's globals, for the plain JavaScript files (TypeScript files get them from @types/node). */
const nodeGlobals = Object.fromEntries(
  [
    'process',
    'Buffer',
    'console',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'URL',
    'URLSearchParams',
    'TextDecoder',
    'TextEncoder',
    'AbortController',
    'AbortSignal',
    'performance',
    'structuredClone',
    'queueMicrotask',
    'fetch',
    'require',
    'module',
    '__dirname',
    '__filename',
    'exports',
  ].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.cache/', 'coverage/', 'src/om/gen/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['vitest.config.ts', 'scripts/*.mts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Unused values are mistakes, except the `_` placeholder convention.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // `void promise` marks a deliberate fire-and-forget.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      'no-console': 'error',
    },
  },
  {
    // Tests, fixtures and scripts talk to the console and to untyped JSON from subprocesses.
    files: ['test/**', 'scripts/**', '*.config.*'],
    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Fakes keep the async signatures of what they replace.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Plain JavaScript files (scripts, the CommonJS bin, the test gateway) are not type-checked.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs', 'bin/ozs3'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: nodeGlobals },
  },
  {
    // bin/ozs3 is CommonJS on purpose: it starts without the ESM loader.
    files: ['bin/ozs3'],
    languageOptions: { sourceType: 'commonjs', globals: nodeGlobals },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
