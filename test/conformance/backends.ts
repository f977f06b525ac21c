// The backends the conformance suite runs against. Adding one is one line in `backends`.
import { copyFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Store, type StoreOptions } from '../../src/index.js'
import { EtcdStore } from '../../src/etcd/index.js'
import { sharedEtcdCluster, stopSharedEtcdCluster } from '../helpers/etcd-cluster.js'
import { MemFs } from '../helpers/mem-fs.js'
import { afterAll } from 'vitest'
import { randomBytes } from 'node:crypto'
import { followerBackend } from './follower-backend.js'
import { ALL_FEATURES, copyAsKilled, DIR_CAPABILITIES, onCleanup, openedStores, tempDir, track, type Backend, type Capabilities, type OpenOptions, type StoreLike } from './harness.js'

/** Where a store lives and what it was opened with, so `reopen`/`crash` can open it again. */
interface Opened {
  readonly location: StoreOptions
  readonly options: OpenOptions
}

/**
 * A backend over `Store.open`: `locate()` gives a fresh location per open, `image()` the
 * location a crash of the store right now would leave (undefined: not persistent).
 */
function storeBackend(
  name: string,
  capabilities: Capabilities,
  locate: () => StoreOptions,
  image?: (location: StoreOptions) => StoreOptions,
  scratchPath?: (name: string) => string,
): Backend {
  const opened = new WeakMap<StoreLike, Opened>()
  const openAt = async (location: StoreOptions, options: OpenOptions): Promise<StoreLike> => {
    const store: StoreLike = track(await Store.open<unknown>({ ...options, ...location }))
    opened.set(store, { location, options })
    return store
  }
  const known = (store: StoreLike): Opened => {
    const o = opened.get(store)
    if (o === undefined) throw new Error(`${name}: store was not opened by this backend`)
    return o
  }
  const backend: Backend = {
    name,
    capabilities,
    open: (options = {}) => openAt(locate(), options),
  }
  if (image !== undefined) {
    backend.reopen = async (store, options) => {
      const o = known(store)
      await store.close()
      return openAt(o.location, options ?? o.options)
    }
    backend.crash = async (store) => {
      const o = known(store)
      return openAt(image(o.location), o.options)
    }
  }
  if (scratchPath !== undefined) backend.scratchPath = scratchPath
  return backend
}



/** In memory only: `Store.open({ clock })`. */
export function memoryBackend(): Backend {
  return storeBackend(
    'memory',
    {
      ...ALL_FEATURES,
      persistent: false,
      survivesCrashWithoutSnapshot: false,
      fakeClock: true,
      versionsAreSeqs: true,
      snapshotFiles: true,
      ownSnapshot: false,
      compaction: false,
    },
    () => ({}),
    undefined,
    (file) => join(tempDir(), file),
  )
}

/**
 * A directory store on the real file system with `sync: 'never'`: a write resolves once it
 * has reached the OS, which is all a process crash needs, and the suite stays fast on slow
 * disks (the MemFs backend covers the default `'always'` against simulated power loss). A
 * crash is what kill -9 leaves: the files as the OS has them now (copied aside, minus the
 * live `LOCK`).
 */
export function realDirBackend(): Backend {
  return storeBackend(
    'dir (real fs)',
    DIR_CAPABILITIES,
    () => ({ dir: join(tempDir(), 'db'), sync: 'never' }),
    (location) => ({ dir: copyAsKilled(location.dir as string) }),
    (file) => join(tempDir(), file),
  )
}

/**
 * A directory store on the in-memory `MemFs` (one per test). A crash is a simulated power
 * loss (`forget-dir-ops`: unsynced data and unsynced directory entries are lost), which
 * every resolved write must survive under the default `sync: 'always'`.
 */
export function memFsDirBackend(): Backend {
  let fs: MemFs | undefined
  let n = 0
  const current = (): MemFs => {
    if (fs === undefined) {
      fs = new MemFs()
      onCleanup(() => {
        fs = undefined
      })
    }
    return fs
  }
  return storeBackend(
    'dir (MemFs)',
    DIR_CAPABILITIES,
    () => ({ dir: `/db${++n}`, fs: current() }),
    (location) => ({ dir: location.dir as string, fs: (location.fs as MemFs).crash('forget-dir-ops') }),
    (file) => {
      current().mkdir(`/scratch${++n}`)
      return `/scratch${n}/${file}`
    },
  )
}

/**
 * Snapshot-file mode (`Store.open({ file })`) on a real temporary file. A crash leaves the
 * file as the last snapshot (or close) wrote it.
 */
export function fileBackend(): Backend {
  return storeBackend(
    'file (snapshot)',
    {
      ...ALL_FEATURES,
      persistent: true,
      survivesCrashWithoutSnapshot: false,
      fakeClock: true,
      versionsAreSeqs: true,
      snapshotFiles: true,
      ownSnapshot: true,
      compaction: false,
    },
    () => ({ file: join(tempDir(), 'store.kvs') }),
    (location) => {
      const copy = join(tempDir(), 'crashed.kvs')
      if (existsSync(location.file as string)) copyFileSync(location.file as string, copy)
      return { file: copy }
    },
    (file) => join(tempDir(), file),
  )
}

afterAll(stopSharedEtcdCluster)

/**
 * `EtcdStore` on a real 3-member etcd cluster (one per test file), each store in a fresh
 * namespace. Persistent: reopen is close + open of the same namespace; a crash is another
 * client opening it while the first is still open (what a crash leaves is what etcd has).
 */
export function etcdBackend(): Backend {
  const { remember, known } = openedStores<{ namespace: string; options: OpenOptions }>('etcd')
  const openAt = async (namespace: string, options: OpenOptions): Promise<StoreLike> => {
    const cluster = await sharedEtcdCluster()
    const store: StoreLike = track(await EtcdStore.open<unknown>({ ...options, endpoints: cluster.endpoints, namespace }))
    remember(store, { namespace, options })
    return store
  }
  return {
    name: 'etcd (3 members)',
    capabilities: {
      ...ALL_FEATURES,
      persistent: true,
      survivesCrashWithoutSnapshot: true,
      fakeClock: true,
      versionsAreSeqs: false,
      snapshotFiles: true,
      ownSnapshot: false,
      compaction: false,
      // One etcd txn: 128 ops (etcd's --max-txn-ops default), one of them the commit marker.
      maxBatchOps: 127,
      // etcd gives every write its own revision; a load cannot set them.
      loadKeepsVersions: false,
      readsInCallOrder: true,
    },
    open: (options = {}) => openAt(`conf-${randomBytes(6).toString('hex')}/`, options),
    reopen: async (store, options) => {
      const o = known(store)
      await store.close()
      return openAt(o.namespace, options ?? o.options)
    },
    crash: async (store) => {
      const o = known(store)
      return openAt(o.namespace, o.options)
    },
    scratchPath: (file) => join(tempDir(), file),
  }
}

/** Every backend the suite runs against. A new backend is one more line here. */
export const backends: readonly Backend[] = [
  memoryBackend(),
  realDirBackend(),
  memFsDirBackend(),
  fileBackend(),
  etcdBackend(),
  followerBackend(),
]
