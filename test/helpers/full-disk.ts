import type { Fs } from '../../src/fs/fs.js'
import { MemFs } from './mem-fs.js'

/** An in-memory `Fs` whose disk can be made full: while `full`, writes and creates fail with ENOSPC. */
export class FullDisk {
  readonly mem = new MemFs()
  full = false
  /** When set, only creating files this accepts fails (writes to open files go through). */
  only: ((path: string) => boolean) | undefined
  readonly fs: Fs

  constructor() {
    const mem = this.mem
    this.fs = new Proxy(mem, {
      get: (target, prop) => {
        const v = Reflect.get(target, prop, target) as unknown
        if (typeof v !== 'function') return v
        return (...args: unknown[]) => {
          const creates = prop === 'open' && args[1] !== 'r'
          const path = typeof args[0] === 'string' ? args[0] : ''
          const hit = this.only === undefined ? prop === 'write' || prop === 'mkdir' || creates : creates && this.only(path)
          if (this.full && hit) {
            throw Object.assign(new Error(`ENOSPC: no space left on device, ${String(prop)}`), { code: 'ENOSPC' })
          }
          return (v as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    }) as Fs
  }
}
