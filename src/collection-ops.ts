// Lists and hashes over the keyspace: reads answer from the live collection; writes build
// ops that record only the changed elements (never the whole collection) and go through
// the commit funnel. The store's facade validates the key and takes the gate first.
import { describeValue } from './arguments.js'
import type { Op } from './codec/ops.js'
import { KvHash, KvList } from './collections.js'
import { resolved, type CommitFunnel } from './commit.js'
import { StoreError } from './errors.js'
import { copyOut, type Keyspace } from './keyspace.js'
import type { Limits } from './limits.js'

function checkIndices(...indices: number[]): void {
  for (const i of indices) {
    if (!Number.isSafeInteger(i)) throw new StoreError('KV_INVALID_ARGUMENT', `list indices must be integers, got ${describeValue(i)}`)
  }
}

/** List and hash operations of one store (see the `Store` methods of the same names). */
export class CollectionOps<V> {
  readonly #ks: Keyspace
  readonly #funnel: CommitFunnel
  readonly #limits: Limits

  constructor(ks: Keyspace, funnel: CommitFunnel, limits: Limits) {
    this.#ks = ks
    this.#funnel = funnel
    this.#limits = limits
  }

  #list(key: string, ops?: Op[]): KvList | undefined {
    return this.#ks.collection(key, KvList, 'a list', ops)
  }

  #hash(key: string, ops?: Op[]): KvHash | undefined {
    return this.#ks.collection(key, KvHash, 'a hash', ops)
  }

  push(key: string, left: boolean, values: V[]): Promise<number> {
    if (values.length === 0) throw new StoreError('KV_INVALID_ARGUMENT', 'push needs at least one value')
    const prepared = values.map((v) => this.#limits.value(v))
    const ops: Op[] = []
    this.#list(key, ops) // an expired list is deleted first, so replay never pushes onto it
    ops.push({ t: 'push', key, left, values: prepared })
    return this.#funnel.commitFor<number>(ops)
  }

  pop(key: string, left: boolean, count: number): Promise<V[]> {
    if (this.#list(key) === undefined || count === 0) return Promise.resolve([])
    return this.#funnel.commitFor<V[]>([{ t: 'pop', key, left, count }])
  }

  range(key: string, start: number, stop: number): V[] {
    checkIndices(start, stop)
    return this.#list(key)?.range(start, stop).map((v) => copyOut<V>(v)) ?? []
  }

  length(key: string): number {
    return this.#list(key)?.length ?? 0
  }

  index(key: string, index: number): V | undefined {
    checkIndices(index)
    const list = this.#list(key)
    if (list === undefined) return undefined
    const i = index < 0 ? list.length + index : index
    return i < 0 || i >= list.length ? undefined : copyOut<V>(list.at(i))
  }

  set(key: string, index: number, value: V): Promise<void> {
    checkIndices(index)
    const stored = this.#limits.value(value)
    const list = this.#list(key)
    if (list === undefined) throw new StoreError('KV_INVALID_ARGUMENT', `no such key ${JSON.stringify(key)}`)
    const i = index < 0 ? list.length + index : index
    if (i < 0 || i >= list.length) throw new StoreError('KV_INVALID_ARGUMENT', 'list index out of range')
    return this.#funnel.commit([{ t: 'lset', key, index: i, value: stored }])
  }

  trim(key: string, start: number, stop: number): Promise<void> {
    checkIndices(start, stop)
    const ops: Op[] = []
    if (this.#list(key, ops) !== undefined) ops.push({ t: 'ltrim', key, start, stop })
    return ops.length === 0 ? resolved.void : this.#funnel.commit(ops)
  }

  hset(key: string, fields: Record<string, V> | ReadonlyMap<string, V>): Promise<number> {
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
      throw new StoreError('KV_INVALID_ARGUMENT', `hset takes an object or a Map of fields, got ${describeValue(fields)}`)
    }
    const names: string[] = []
    const values: unknown[] = []
    const entries = fields instanceof Map ? fields.entries() : Object.entries(fields as Record<string, V>)
    for (const [f, v] of entries) {
      this.#limits.field(f)
      names.push(f)
      values.push(this.#limits.value(v))
    }
    if (names.length === 0) throw new StoreError('KV_INVALID_ARGUMENT', 'hset needs at least one field')
    const ops: Op[] = []
    this.#hash(key, ops)
    ops.push({ t: 'hset', key, fields: names, values })
    return this.#funnel.commitFor<number>(ops)
  }

  hget(key: string, field: string): V | undefined {
    const v = this.#hash(key)?.get(field)
    return v === undefined ? undefined : copyOut<V>(v)
  }

  hdel(key: string, fields: string[]): Promise<number> {
    for (const f of fields) this.#limits.field(f)
    const h = this.#hash(key)
    const present = h === undefined ? [] : fields.filter((f) => h.has(f))
    if (present.length === 0) return Promise.resolve(0)
    return this.#funnel.commitFor<number>([{ t: 'hdel', key, fields: present }])
  }

  hgetall(key: string): Map<string, V> {
    const m = new Map<string, V>()
    const h = this.#hash(key)
    if (h !== undefined) for (const [f, v] of h.entries()) m.set(f, copyOut<V>(v))
    return m
  }

  hlen(key: string): number {
    return this.#hash(key)?.size ?? 0
  }

  hexists(key: string, field: string): boolean {
    return this.#hash(key)?.has(field) ?? false
  }
}
