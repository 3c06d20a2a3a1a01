// ESLint 9 flat config: the recommended JS and typescript-eslint rules, without the type-aware ones (lint
// needs no build and stays fast). Formatting is Prettier's job (scripts/format.sh), not ESLint's.
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const globals = require('globals');

module.exports = tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'build/', 'build-*/', 'prebuilds/', '.cache/', 'test/fuzz/corpus/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'commonjs', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `let [a, b] = ...` where only one is reassigned stays one declaration.
      'prefer-const': ['error', { destructuring: 'all' }],
    },
  },
  {
    // Plain CommonJS scripts (bin, bench, scripts, jest config, test launchers): require() is how they import.
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests load the addon and modules lazily with require(), and poke at loosely typed native objects and
    // mocks with `any`; typing every probe would add noise without catching bugs.
    files: ['test/**/*.ts'],
    languageOptions: { globals: { ...globals.jest } },
    rules: { '@typescript-eslint/no-require-imports': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
