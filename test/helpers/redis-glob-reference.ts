// Test oracle: a line-by-line port of Redis util.c `stringmatchlen_impl` (nocase = 0),
// over code points instead of bytes. Deliberately naive; never used by src/.
//
// C reads one byte past the pattern (its NUL terminator) in three places; END stands in
// for it, a value no pattern character can equal.

const END = -1
const STAR = 0x2a
const QUESTION = 0x3f
const OPEN = 0x5b
const CLOSE = 0x5d
const CARET = 0x5e
const DASH = 0x2d
const BACKSLASH = 0x5c

/** Redis `stringmatchlen(pattern, key, nocase = 0)`, with characters as Unicode code points. */
export function redisStringMatch(pattern: string, key: string): boolean {
  const p = Array.from(pattern, (c) => c.codePointAt(0)!)
  const s = Array.from(key, (c) => c.codePointAt(0)!)
  return impl(p, 0, p.length, s, 0, s.length, { skipLongerMatches: false }, 0)
}

function impl(
  pat: number[],
  pi: number,
  patternLen: number,
  str: number[],
  si: number,
  stringLen: number,
  flags: { skipLongerMatches: boolean },
  nesting: number,
): boolean {
  // `pattern[k]` in C: the code point k places on, END past the pattern's end.
  const pattern = (k: number): number => (k < patternLen ? pat[pi + k]! : END)
  const string0 = (): number => str[si]!

  if (nesting > 1000) return false

  while (patternLen && stringLen) {
    switch (pattern(0)) {
      case STAR: {
        while (patternLen && pattern(1) === STAR) {
          pi++
          patternLen--
        }
        if (patternLen === 1) return true
        while (stringLen) {
          if (impl(pat, pi + 1, patternLen - 1, str, si, stringLen, flags, nesting + 1)) return true
          if (flags.skipLongerMatches) return false
          si++
          stringLen--
        }
        flags.skipLongerMatches = true
        return false
      }
      case QUESTION:
        si++
        stringLen--
        break
      case OPEN: {
        pi++
        patternLen--
        const not = pattern(0) === CARET
        if (not) {
          pi++
          patternLen--
        }
        let match = false
        for (;;) {
          if (pattern(0) === BACKSLASH && patternLen >= 2) {
            pi++
            patternLen--
            if (pattern(0) === string0()) match = true
          } else if (pattern(0) === CLOSE) {
            break
          } else if (patternLen === 0) {
            pi--
            patternLen++
            break
          } else if (patternLen >= 3 && pattern(1) === DASH) {
            let start = pattern(0)
            let end = pattern(2)
            const c = string0()
            if (start > end) {
              const t = start
              start = end
              end = t
            }
            pi += 2
            patternLen -= 2
            if (c >= start && c <= end) match = true
          } else {
            if (pattern(0) === string0()) match = true
          }
          pi++
          patternLen--
        }
        if (not) match = !match
        if (!match) return false
        si++
        stringLen--
        break
      }
      case BACKSLASH:
        if (patternLen >= 2) {
          pi++
          patternLen--
        }
        if (pattern(0) !== string0()) return false
        si++
        stringLen--
        break
      default:
        if (pattern(0) !== string0()) return false
        si++
        stringLen--
        break
    }
    pi++
    patternLen--
    if (stringLen === 0) {
      while (pattern(0) === STAR) {
        pi++
        patternLen--
      }
      break
    }
  }
  return patternLen === 0 && stringLen === 0
}
