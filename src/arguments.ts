// Checks of what callers pass in: option objects with unknown keys, enumerations, integers.
// A misspelt option must never be ignored: `{ directory: './data' }` silently giving an
// in-memory store loses everything at exit.
import { StoreError } from './errors.js'

/** How a wrong value reads in an error message: `the string "100"`, `null`, `an array`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null'
  if (v === undefined) return 'undefined'
  switch (typeof v) {
    case 'string': {
      const shown = v.length > 40 ? `${JSON.stringify(v.slice(0, 40))}…` : JSON.stringify(v)
      return `the string ${shown}`
    }
    case 'number':
    case 'bigint':
    case 'boolean':
      return `the ${typeof v} ${String(v)}${typeof v === 'bigint' ? 'n' : ''}`
    case 'function':
      return 'a function'
    case 'symbol':
      return 'a symbol'
    default:
      if (Array.isArray(v)) return 'an array'
      if (v instanceof Uint8Array) return 'a Uint8Array'
      return 'an object'
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0] as number
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = row[j] as number
      row[j] = Math.min(up + 1, (row[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = up
    }
  }
  return row[b.length] as number
}

function commonPrefix(a: string, b: string): number {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return i
}

/**
 * The allowed name closest to `name`: case-insensitive edit distance, with a shared prefix
 * counting in favour (`directory` is closer to `dir` than to `recovery`).
 */
export function closest(name: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  const lower = name.toLowerCase()
  for (const candidate of allowed) {
    const c = candidate.toLowerCase()
    const d = editDistance(lower, c) - 2 * commonPrefix(lower, c)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

/**
 * Refuse anything but a plain object whose own keys are all in `allowed`.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` naming the unknown key and the closest valid one.
 */
export function checkOptionsObject(what: string, options: unknown, allowed: readonly string[]): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new StoreError('KV_INVALID_ARGUMENT', `${what} must be an object, got ${describeValue(options)}`)
  }
  for (const name in options) {
    if (!Object.hasOwn(options, name) || allowed.includes(name)) continue
    const hint = closest(name, allowed)
    throw new StoreError(
      'KV_INVALID_ARGUMENT',
      `unknown ${what} key ${JSON.stringify(name)}${hint === undefined ? '' : ` (did you mean ${JSON.stringify(hint)}?)`}`,
    )
  }
}

/**
 * `value` when it is one of `allowed` (or undefined), else a coded error.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` listing the valid values.
 */
export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined || allowed.includes(value as T)) return value as T | undefined
  const list = allowed.map((a) => `'${a}'`).join(', ')
  const hint = typeof value === 'string' ? closest(value, allowed) : undefined
  throw new StoreError(
    'KV_INVALID_ARGUMENT',
    `${name} must be one of ${list}, got ${describeValue(value)}${hint === undefined ? '' : ` (did you mean '${hint}'?)`}`,
  )
}

/**
 * `v` when it is a positive (or, with `allowZero`, non-negative) safe integer.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` showing what was given.
 */
export function positiveInt(name: string, v: unknown, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || (!allowZero && v === 0)) {
    throw new StoreError('KV_INVALID_ARGUMENT', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${describeValue(v)}`)
  }
  return v
}

/**
 * `fn` when it is a function.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` showing what was given.
 */
export function checkFunction<F>(name: string, fn: F): F {
  if (typeof fn !== 'function') throw new StoreError('KV_INVALID_ARGUMENT', `${name} must be a function, got ${describeValue(fn)}`)
  return fn
}
