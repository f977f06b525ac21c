// Deterministic keys and values: 16-byte keys, 100-byte values (issue 8).

/** Seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` distinct 16-character keys `pp:` + 13 digits, in random order; prefix `pp` cycles over 100 values. */
export function makeKeys(n: number, seed: number, tag = 'k'): string[] {
  const r = rng(seed)
  const out = new Array<string>(n)
  const seen = new Set<string>()
  for (let i = 0; i < n; i++) {
    let k: string
    do {
      const p = String(Math.floor(r() * 100)).padStart(2, '0')
      k = `${tag}${p}:${String(Math.floor(r() * 1e12)).padStart(12, '0')}`
    } while (seen.has(k))
    seen.add(k)
    // Flatten: template strings are ropes in V8 and would distort lookups.
    out[i] = k.split('').join('')
  }
  return out
}

export const VALUE = 'v'.repeat(100)

/** Shuffle in place with a seeded PRNG. */
export function shuffle<T>(arr: T[], seed: number): T[] {
  const r = rng(seed)
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    const t = arr[i] as T
    arr[i] = arr[j] as T
    arr[j] = t
  }
  return arr
}
