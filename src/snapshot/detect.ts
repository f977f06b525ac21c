// Pick a snapshot format from a file's first bytes.

import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import { binarySnapshot } from './binary.js'
import type { SnapshotFormat } from './format.js'
import { jsonSnapshot } from './json.js'
import { readHead, SNIFF_BYTES, sniff } from './stream.js'

/**
 * The format of a file starting with `firstBytes`, or `undefined` when unrecognised.
 *
 * `{`, JSON whitespace or a UTF-8 BOM → JSON; the binary magic in either byte order →
 * binary. Compressed files are looked through: give at least {@link SNIFF_BYTES}
 * bytes (or the whole file) for that. A gzip file whose inner format is not visible
 * in the bytes given yields {@link autoSnapshot}, which detects again when reading;
 * brotli has no magic and is recognised only when its inner format is visible.
 */
export function detectFormat(firstBytes: Uint8Array): SnapshotFormat | undefined {
  const { compression, kind } = sniff(firstBytes)
  if (kind === 'json') return jsonSnapshot
  if (kind === 'binary') return binarySnapshot
  return compression === 'gzip' ? autoSnapshot : undefined
}

/**
 * The format of the file at `path`, from its first {@link SNIFF_BYTES} bytes; never
 * {@link autoSnapshot}.
 *
 * @throws {@link StoreError} `KV_IO` when the file cannot be read.
 */
export function detectFileFormat(fs: Fs, path: string): SnapshotFormat | undefined {
  const f = detectFormat(readHead(fs, path, SNIFF_BYTES))
  return f === autoSnapshot ? undefined : f
}

/**
 * A format that detects the real one when reading (writes binary).
 *
 * @throws {@link StoreError} `KV_CORRUPT` from `read` when the file is not a snapshot.
 */
export const autoSnapshot: SnapshotFormat = {
  name: 'auto',
  write: (fs, fd, meta, entries, opts) => binarySnapshot.write(fs, fd, meta, entries, opts),
  read: async (fs, path, visit, opts) => {
    const f = detectFileFormat(fs, path)
    if (f === undefined) throw new StoreError('KV_CORRUPT', `${path}: not a kvstore snapshot (unknown format)`)
    return f.read(fs, path, visit, opts)
  },
}
