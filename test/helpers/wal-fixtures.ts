// Fixtures shared by the WAL and recovery tests: an in-memory directory and op payloads.
import { ByteWriter } from '../../src/codec/bytes.js'
import { encodeOps, type Op } from '../../src/codec/ops.js'
import { MemFs } from './mem-fs.js'

/** A MemFs holding the empty directory `dir`, durably created. */
export function memDir(dir: string): MemFs {
  const fs = new MemFs()
  fs.mkdir(dir)
  fs.syncAll()
  return fs
}

/** The WAL record payload of `ops`. */
export function opsPayload(ops: Op[]): Uint8Array {
  const w = new ByteWriter()
  encodeOps(ops, w)
  return new Uint8Array(w.finish())
}
