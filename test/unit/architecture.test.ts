// The architecture, checked: no import cycles in src/, the layering rules of
// docs/ARCHITECTURE.md, and emitted declarations that expose only the documented API.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

function sourceFiles(dir = SRC): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...sourceFiles(path))
    else if (entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}

/** Relative imports (value and type) of `file`, as paths relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/g)) {
    const target = resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'))
    out.push(relative(SRC, target))
  }
  return out
}

const graph = new Map(sourceFiles().map((f) => [relative(SRC, f), importsOf(f)]))

function findCycle(): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>()
  const stack: string[] = []
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined
    if (state.get(node) === 'visiting') return [...stack.slice(stack.indexOf(node)), node]
    state.set(node, 'visiting')
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next)
      if (cycle !== undefined) return cycle
    }
    stack.pop()
    state.set(node, 'done')
    return undefined
  }
  for (const node of graph.keys()) {
    const cycle = visit(node)
    if (cycle !== undefined) return cycle
  }
  return undefined
}

/** Imports from files under `from` that break `allowed`. */
function violations(from: (file: string) => boolean, allowed: (target: string) => boolean): string[] {
  const out: string[] = []
  for (const [file, targets] of graph) {
    if (!from(file)) continue
    for (const t of targets) if (!allowed(t)) out.push(`${file} -> ${t}`)
  }
  return out
}

describe('source layering', () => {
  it('finds every module and resolves every relative import', () => {
    expect(graph.size).toBeGreaterThan(40)
    for (const [file, targets] of graph) for (const t of targets) expect(graph.has(t), `${file} imports ${t}`).toBe(true)
  })

  it('has no import cycles', () => {
    expect(findCycle()).toBeUndefined()
  })

  it('the cycle check can fail', () => {
    graph.set('a-probe.ts', ['b-probe.ts'])
    graph.set('b-probe.ts', ['a-probe.ts'])
    try {
      expect(findCycle()).toEqual(expect.arrayContaining(['a-probe.ts', 'b-probe.ts']))
    } finally {
      graph.delete('a-probe.ts')
      graph.delete('b-probe.ts')
    }
  })

  it('wal/ knows bytes and files, not keys, values or the store', () => {
    expect(violations((f) => f.startsWith('wal/'), (t) => t.startsWith('wal/') || t.startsWith('fs/') || t === 'errors.ts')).toEqual([])
  })

  it('commands and the CLI are layers above the store: nothing below imports them', () => {
    expect(violations((f) => !f.startsWith('cli/') && !f.startsWith('commands/') && !f.startsWith('server/') && f !== 'index.ts', (t) => !t.startsWith('cli/') && !t.startsWith('commands/'))).toEqual([])
    expect(violations((f) => !f.startsWith('cli/'), (t) => !t.startsWith('cli/'))).toEqual([])
  })

  it('commands use only the public modules of the store, never index.ts', () => {
    const publicModules = new Set(['store.ts', 'errors.ts', 'options.ts', 'types.ts', 'rwlock.ts'])
    expect(violations((f) => f.startsWith('commands/'), (t) => t.startsWith('commands/') || publicModules.has(t))).toEqual([])
  })

  it('etcd/ is a backend beside the embedded engine: it uses no part of the directory engine, and only its entry reaches it', () => {
    const engine = (t: string): boolean => t === 'store.ts' || t.startsWith('wal/') || t === 'recovery.ts' || t.startsWith('persistence/') && t !== 'persistence/persistence.ts' || t === 'commit.ts' || t === 'maintenance.ts' || t === 'dir-lock.ts'
    expect(violations((f) => f.startsWith('etcd/'), (t) => !engine(t) && !t.startsWith('commands/') && !t.startsWith('cli/') && t !== 'index.ts')).toEqual([])
    expect(violations((f) => !f.startsWith('etcd/') && !f.startsWith('cli/'), (t) => !t.startsWith('etcd/'))).toEqual([])
  })

  it('server/ reaches the store only through the command language, and only the CLI imports it', () => {
    expect(violations((f) => f.startsWith('server/'), (t) => t.startsWith('server/') || t.startsWith('commands/') || t === 'errors.ts' || t === 'arguments.ts')).toEqual([])
    expect(violations((f) => !f.startsWith('server/') && !f.startsWith('cli/'), (t) => !t.startsWith('server/'))).toEqual([])
  })

  it('the adapters (level/, keyv/) are layers above the store: they use its public modules, and nothing imports them', () => {
    const publicModules = new Set(['store.ts', 'errors.ts', 'options.ts', 'types.ts', 'scan-options.ts', 'key-value-store.ts', 'arguments.ts', 'key-list.ts'])
    const adapter = (f: string): boolean => f.startsWith('level/') || f.startsWith('keyv/')
    expect(violations((f) => f.startsWith('level/'), (t) => t.startsWith('level/') || publicModules.has(t))).toEqual([])
    expect(violations((f) => f.startsWith('keyv/'), (t) => t.startsWith('keyv/') || publicModules.has(t))).toEqual([])
    expect(violations((f) => !adapter(f), (t) => !adapter(t))).toEqual([])
  })

  it('store.ts and etcd/store.ts are the only files that wire the parts together', () => {
    const parts = /\b(?:new (?:Keyspace|CommitFunnel|Maintenance|ExpirySweeper|ValueOps|CollectionOps|Gate|ChangeHub|Limits)\b|(?<!function )createPersistence\()/
    const wiring = [...graph.keys()].filter((f) => parts.test(readFileSync(join(SRC, f), 'utf8').replace(/^\s*(\/\/|\*).*$/gm, '')))
    expect(wiring.sort()).toEqual(['etcd/store.ts', 'store.ts'])
  })

})

describe('emitted declarations', () => {
  it('expose only the documented API', async () => {
    const { build } = await import('tsup')
    const out = mkdtempSync(join(tmpdir(), 'kvstore-dts-'))
    try {
      await build({
        entry: { index: join(SRC, 'index.ts'), commands: join(SRC, 'commands/index.ts'), etcd: join(SRC, 'etcd/index.ts'), server: join(SRC, 'server/index.ts'), level: join(SRC, 'level/index.ts'), keyv: join(SRC, 'keyv/index.ts') },
        format: ['esm'],
        dts: { only: true },
        outDir: out,
        config: false,
        silent: true,
      })
      const files = readdirSync(out).filter((f) => f.endsWith('.d.ts'))
      const all = files.map((f) => readFileSync(join(out, f), 'utf8')).join('\n')
      const exported = (name: string): string[] => {
        const text = readFileSync(join(out, name), 'utf8')
        const names: string[] = []
        for (const m of text.matchAll(/export (?:type )?\{([^}]*)\}/g)) {
          for (const part of (m[1] as string).split(',')) {
            const name = part.trim().replace(/^type /, '').split(/\s+as\s+/).pop()
            if (name) names.push(name)
          }
        }
        return names.sort()
      }
      expect(exported('index.d.ts')).toEqual(
        [
          'AtomicOperation', 'AtomicResult', 'BatchOp', 'Change', 'ChangeFeed', 'Clock', 'CommandContext', 'CommandSpec', 'Entry',
          'ErrorCode', 'EvictionPolicy', 'FollowerStats', 'KeyType', 'KeyValueStore', 'MemoryOptions', 'Namespace', 'ProgressEvent', 'RangeBounds', 'RecoveryMode', 'RecoveryStats',
          'RemovalReason', 'Reply', 'ScanOptions', 'Session',
          'SetOptions', 'SnapshotFormatName', 'SnapshotResult', 'Store', 'StoreError', 'StoreOptions', 'StoreStats', 'SyncPolicy',
          'Transaction', 'Value', 'WatchOptions', 'commands', 'createSession', 'isStoreError', 'quote', 'tokenize',
        ].sort(),
      )
      expect(exported('commands.d.ts')).toEqual(['CommandContext', 'CommandSpec', 'Reply', 'Session', 'commands', 'createSession', 'quote', 'tokenize'])
      expect(exported('etcd.d.ts')).toEqual(['EtcdStore', 'EtcdStoreOptions'])
      expect(exported('level.d.ts')).toEqual(['KvstoreLevel', 'KvstoreLevelOptions'])
      expect(exported('keyv.d.ts')).toEqual(['KeyvKvstore', 'KeyvKvstoreOpts'])
      expect(exported('server.d.ts')).toEqual(['KvServer', 'ServerAddress', 'ServerOptions', 'ServerStats', 'ServerStore', 'createServer'])
      // Classes a user can reach are the stores and their error; every other handle is an interface.
      expect([...all.matchAll(/declare class (\w+)/g)].map((m) => m[1]).sort()).toEqual(['EtcdStore', 'KeyvKvstore', 'KvServer', 'KvstoreLevel', 'Store', 'StoreError'])
      for (const internal of ['commitOps', 'liveTable', 'runExclusive', 'TransactionHost', 'Keyspace', 'ChangeHub', 'Memtable', 'Persistence', 'CommitFunnel', 'attach(', 'publishOp', 'EtcdClient', 'Committer', 'LeasePool', 'EtcdTxHost', 'RespParser', 'ConnectionHost', 'ClientHandle']) {
        expect(all.includes(internal), `${internal} leaks into the declarations`).toBe(false)
      }
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })
})
