import type { ProgressEvent, ResolvedOptions } from '../options.js'
import { DirectoryPersistence } from './directory.js'
import { FilePersistence } from './file.js'
import { MemoryPersistence } from './memory.js'
import type { Persistence } from './persistence.js'

/** The persistence `o.mode` asks for, at the absolute `path` (undefined in memory). */
export function createPersistence(o: ResolvedOptions, path: string | undefined, progress: (e: ProgressEvent) => void): Persistence {
  const now = (): number => o.clock.now()
  const limits = { maxKeyBytes: o.maxKeyBytes, maxValueBytes: o.maxValueBytes }
  if (o.mode === 'memory' || path === undefined) return new MemoryPersistence()
  if (o.mode === 'file') return new FilePersistence(path, { fs: o.fs, now, onProgress: progress, limits, fileMode: o.fileMode })
  return new DirectoryPersistence(path, {
    fs: o.fs,
    sync: o.sync,
    syncIntervalMs: o.syncIntervalMs,
    recovery: o.recovery,
    snapshotFormat: o.snapshotFormat,
    compactThresholdBytes: o.compactThresholdBytes,
    now,
    onProgress: progress,
    limits,
    fileMode: o.fileMode,
    dirMode: o.dirMode,
  })
}
