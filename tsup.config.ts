import { defineConfig } from 'tsup'

/** The library's entries: the core and the layers above it. */
export const libraryEntries = {
  index: 'src/index.ts',
  commands: 'src/commands/index.ts',
  etcd: 'src/etcd/index.ts',
  server: 'src/server/index.ts',
  level: 'src/level/index.ts',
  keyv: 'src/keyv/index.ts',
}

export default defineConfig([
  {
    // ES modules, the CLI among them: code shared by entries goes to common chunks, so the
    // CLI imports the library's chunks instead of bundling a second copy. The CLI keeps the
    // shebang of src/cli/main.ts.
    entry: { ...libraryEntries, cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: { entry: libraryEntries },
    sourcemap: true,
    clean: true,
    target: 'node20',
  },
  {
    // The same library for require(); the CLI is an ES module program only.
    entry: libraryEntries,
    format: ['cjs'],
    dts: { entry: libraryEntries },
    sourcemap: true,
    clean: false,
    target: 'node20',
  },
])
