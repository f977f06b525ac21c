// The README's adapter examples run as written: each ```js block of "## Adapters" is
// written to a scratch directory (under node_modules/.cache) with the package's imports pointed at src/, run with tsx,
// and its output compared with the `// …` comments after its console.log calls.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const NAME = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string }).name
const ENTRIES: Record<string, string> = { '': 'src/index.ts', '/keyv': 'src/keyv/index.ts', '/level': 'src/level/index.ts' }

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const section = readme.slice(readme.indexOf('\n## Adapters'), readme.indexOf('\n## ', readme.indexOf('\n## Adapters') + 1))
const examples = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1] as string)

describe('README adapter examples', () => {
  it('finds one example per adapter', () => {
    expect(examples.length).toBe(2)
  })

  it.each(examples.map((code, i) => [i, code] as const))('example %i runs and prints what its comments say', (_i, code) => {
    // Inside the checkout, so `keyv`, `abstract-level` and `tsx` resolve from its node_modules.
    mkdirSync(join(ROOT, 'node_modules/.cache'), { recursive: true })
    const cwd = mkdtempSync(join(ROOT, 'node_modules/.cache/kvstore-readme-'))
    try {
      const source = code.replace(new RegExp(`from '${NAME}(/\\w+)?'`, 'g'), (_m, sub: string | undefined) => {
        const target = ENTRIES[sub ?? '']
        if (target === undefined) throw new Error(`unknown entry ${NAME}${sub}`)
        return `from '${pathToFileURL(join(ROOT, target)).href}'`
      })
      writeFileSync(join(cwd, 'example.mts'), source)
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'example.mts'], { cwd, encoding: 'utf8' })
      expect(r.stderr).toBe('')
      expect(r.status).toBe(0)
      const expected = [...code.matchAll(/console\.log\(.*\) \/\/ (.*)$/gm)].map((m) => m[1])
      expect(r.stdout.trim().split('\n')).toEqual(expected)
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })
})
