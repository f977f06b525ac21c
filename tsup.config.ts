import { defineConfig } from 'tsup'

export default defineConfig([
  {
    // The core and the layers above it; shared code goes to common chunks.
    entry: { index: 'src/index.ts', commands: 'src/commands/index.ts', etcd: 'src/etcd/index.ts', server: 'src/server/index.ts', level: 'src/level/index.ts', keyv: 'src/keyv/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
  },
  {
    // The CLI is an ES module program; it bundles the library it uses.
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    sourcemap: true,
    clean: false,
    target: 'node20',
  },
])
