// Atomic, durable snapshot file replacement, and removal of the temp files it leaves
// when a crash interrupts it.

import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { StoreError } from '../errors.js'
import { DEFAULT_FILE_MODE, type Fs } from '../fs/fs.js'
import type { SnapshotEntry, SnapshotFormat, SnapshotMeta, SnapshotWriteOptions } from './format.js'

/** Between a target's name and the random part of its temp file's name. */
const TEMP_INFIX = '.tmp-'
/** Random bytes in a temp name (written as twice as many hex digits). */
const TEMP_RANDOM_BYTES = 6
/** A temp name's random part, exactly as {@link tempPathFor} writes it. */
const TEMP_SUFFIX = new RegExp(`^[0-9a-f]{${TEMP_RANDOM_BYTES * 2}}$`)

/** Options of {@link writeSnapshotFile}: the format's options plus the file's mode. */
export interface SnapshotFileOptions extends SnapshotWriteOptions {
  /**
   * Permission bits of the file written, set exactly (the umask does not apply; an
   * `Fs` without `chmod` can only pass them to `open`, where it does).
   * @defaultValue the mode of the file replaced; for a new file
   *   {@link DEFAULT_FILE_MODE} (subject to the umask)
   */
  mode?: number
}

/** A fresh temp path for writing `target`: `<target>.tmp-<12 hex digits>`, in the same directory. */
function tempPathFor(target: string): string {
  return `${target}${TEMP_INFIX}${randomBytes(TEMP_RANDOM_BYTES).toString('hex')}`
}

/**
 * True when `name` (a bare file name) is one {@link writeSnapshotFile} gives its temp
 * files: `<target name>.tmp-<12 lowercase hex digits>`, for any target or, when
 * `target` (a bare name) is given, for that one only.
 */
export function isSnapshotTempName(name: string, target?: string): boolean {
  const at = name.lastIndexOf(TEMP_INFIX)
  if (at <= 0 || !TEMP_SUFFIX.test(name.slice(at + TEMP_INFIX.length))) return false
  return target === undefined || name.slice(0, at) === target
}

/**
 * The file a write to `path` replaces: `path` with symbolic links resolved, so that a
 * link keeps pointing at the store's file instead of being replaced by a regular file
 * (the temp file must sit beside the real file for the rename to be atomic).
 */
function resolveTarget(fs: Fs, path: string): string {
  if (fs.realpath === undefined) return path
  try {
    return fs.realpath(path)
  } catch (err) {
    // Not there yet (or a dangling link, which the new file replaces): write `path` itself.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return path
    throw err
  }
}

/**
 * Write a snapshot to `path` so that `path` holds either the old file or the complete
 * new one, whatever fails or crashes.
 *
 * Steps: create `path + '.tmp-<random>'` exclusively in the same directory, with the
 * mode of the file it replaces (or `opts.mode`, or {@link DEFAULT_FILE_MODE} for a new
 * file), stream the entries, datasync, close, rename over `path`, fsync the
 * directory. Once this resolves, the new file survives power loss. When `path` is a
 * symbolic link, the file it points to is replaced and the link kept.
 *
 * A crash (kill -9, power loss) before the rename leaves the temp file behind;
 * {@link removeStaleTemps} deletes such files.
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
  opts?: SnapshotFileOptions,
): Promise<{ bytes: number }> {
  const { mode: askedMode, ...writeOpts } = opts ?? {}
  let tmp: string | undefined
  let fd = -1
  let renamed = false
  try {
    const target = resolveTarget(fs, path)
    const mode = askedMode ?? fs.stat(target)?.mode
    const name = tempPathFor(target)
    fd = fs.open(name, 'wx', mode ?? DEFAULT_FILE_MODE)
    // Only a temp file this call created is ever removed: after a failed 'wx' the name may
    // be another writer's.
    tmp = name
    // open's mode passes through the umask; set the replaced file's (or the asked) mode
    // exactly, before the rename, so the target name never shows other permissions.
    if (mode !== undefined && fs.chmod !== undefined) fs.chmod(tmp, mode)
    const { bytes } = await format.write(fs, fd, meta, entries, writeOpts)
    await fs.datasync(fd)
    const open = fd
    fd = -1
    fs.close(open)
    fs.rename(tmp, target)
    renamed = true
    await fs.fsyncDir(dirname(target))
    return { bytes }
  } catch (err) {
    if (fd !== -1) {
      try {
        fs.close(fd)
      } catch {
        // Already failing; the close error adds nothing.
      }
    }
    if (tmp !== undefined && !renamed) {
      try {
        fs.unlink(tmp)
      } catch {
        // Already gone: nothing to clean.
      }
    }
    if (err instanceof StoreError) throw err
    throw new StoreError('KV_IO', `cannot write snapshot ${path}`, { cause: err })
  }
}

/**
 * Delete the temp files that interrupted {@link writeSnapshotFile} calls for `file`
 * left behind (`<file>.tmp-<12 hex digits>` beside the file, or beside the file a
 * symbolic link `file` points to). Files of any other name are never touched.
 *
 * Call it only while no other writer can be writing `file` (the store owning it, at
 * open): a temp file of a write in progress looks the same as one left by a crash.
 * The deletions are not fsynced: a temp file that comes back after power loss is
 * removed by the next call.
 *
 * @returns the paths removed.
 * @throws {@link StoreError} `KV_IO` when the directory cannot be listed or a temp
 *   file cannot be removed.
 */
export function removeStaleTemps(fs: Fs, file: string): string[] {
  let dir = dirname(file)
  try {
    const target = resolveTarget(fs, file)
    dir = dirname(target)
    const base = basename(target)
    let names: string[]
    try {
      names = fs.readdir(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const removed: string[] = []
    for (const name of names) {
      if (!isSnapshotTempName(name, base)) continue
      const path = join(dir, name)
      // A directory of that name is not one of ours (unlink would fail on it anyway).
      if ((fs.lstat ?? fs.stat).call(fs, path)?.isDirectory !== false) continue
      try {
        fs.unlink(path)
        removed.push(path)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
    return removed
  } catch (err) {
    throw new StoreError('KV_IO', `cannot remove stale temp files of ${file} in ${dir}`, { cause: err })
  }
}
