// HELP fits an 80-column terminal and still lists every command with its summary.
import { describe, expect, it } from 'vitest'
import { commands } from '../../src/commands/index.js'
import { helpText } from '../../src/commands/table.js'
import { USAGE } from '../../src/cli/args.js'
import { COPY_USAGE } from '../../src/cli/copy.js'
import { SERVE_USAGE } from '../../src/cli/serve.js'

const text = (): string => {
  const r = helpText()
  if (r.type !== 'bulk' || r.value === null) throw new Error('HELP is not text')
  return r.value
}

describe('HELP', () => {
  it('has no line wider than 80 columns', () => {
    const wide = text().split('\n').filter((l) => l.length > 80)
    expect(wide).toEqual([])
  })

  it('names every command and gives every summary, word for word', () => {
    const flat = text().replace(/\s+/g, ' ')
    for (const spec of commands.values()) {
      expect(flat).toContain(spec.syntax.replace(/\s+/g, ' '))
      expect(flat).toContain(spec.summary.replace(/\s+/g, ' '))
    }
  })
})

describe('--help of kvstore, kvstore copy and kvstore serve', () => {
  it.each([
    ['kvstore', USAGE],
    ['kvstore copy', COPY_USAGE],
    ['kvstore serve', SERVE_USAGE],
  ])('%s fits 80 columns', (_name, usage) => {
    expect(usage.split('\n').filter((l) => l.length > 80)).toEqual([])
  })
})
