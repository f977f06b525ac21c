// Atomic, durable snapshot file replacement.

import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import type { SnapshotEntry, SnapshotFormat, SnapshotMeta, SnapshotWriteOptions } from './format.js'

/**
 * Write a snapshot to `path` so that `path` holds either the old file or the complete
 * new one, whatever fails or crashes.
 *
 * Steps: create `path + '.tmp-<random>'` in the same directory, stream the entries,
 * datasync, close, rename over `path`, fsync the directory. Once this resolves, the
 * new file survives power loss.
 *
 * @returns the bytes written.
 * @throws {@link StoreError} `KV_IO` (cause: the original error) when any step fails;
 *   the temp file is removed and the old `path` is untouched (unless only the final
 *   directory fsync failed, when `path` already holds the complete new file). A
 *   `StoreError` from the format or the entries (e.g. `KV_INVALID_ARGUMENT`) is
 *   rethrown as is, after the same cleanup.
 */
export async function writeSnapshotFile(
  fs: Fs,
  path: string,
  format: SnapshotFormat,
  meta: SnapshotMeta,
  entries: Iterable<SnapshotEntry>,
  opts?: SnapshotWriteOptions,
): Promise<{ bytes: number }> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  let fd = -1
  let renamed = false
  try {
    fd = fs.open(tmp, 'wx')
    const { bytes } = await format.write(fs, fd, meta, entries, opts)
    await fs.datasync(fd)
    const open = fd
    fd = -1
    fs.close(open)
    fs.rename(tmp, path)
    renamed = true
    await fs.fsyncDir(dirname(path))
    return { bytes }
  } catch (err) {
    if (fd !== -1) {
      try {
        fs.close(fd)
      } catch {
        // Already failing; the close error adds nothing.
      }
    }
    if (!renamed) {
      try {
        fs.unlink(tmp)
      } catch {
        // Never created, or already gone: nothing to clean.
      }
    }
    if (err instanceof StoreError) throw err
    throw new StoreError('KV_IO', `cannot write snapshot ${path}`, { cause: err })
  }
}
