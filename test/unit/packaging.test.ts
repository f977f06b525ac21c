// The package as published: built with tsup.config.ts into a scratch copy of the package,
// the CLI shares the library's chunks (no second copy of the store), and publint and
// @arethetypeswrong/cli find nothing wrong with any entry.
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const bin = (name: string): string => join(ROOT, 'node_modules/.bin', name)
let pkg: string

beforeAll(() => {
  pkg = mkdtempSync(join(tmpdir(), 'kvstore-pack-'))
  const built = spawnSync(bin('tsup'), ['--out-dir', join(pkg, 'dist'), '--silent'], { cwd: ROOT, encoding: 'utf8' })
  if (built.status !== 0) throw new Error(`tsup failed: ${built.stderr}`)
  for (const f of ['README.md', 'LICENSE', 'docs']) cpSync(join(ROOT, f), join(pkg, f), { recursive: true })
  // Without scripts: packing the copy must not run `prepare` (a build) again.
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>
  delete manifest.scripts
  writeFileSync(join(pkg, 'package.json'), JSON.stringify(manifest, null, 2))
}, 300_000)

afterAll(() => rmSync(pkg, { recursive: true, force: true }))

describe('the published package', () => {
  it('has a CLI that imports the library chunks and keeps its shebang', () => {
    const cli = readFileSync(join(pkg, 'dist/cli.js'), 'utf8')
    expect(cli.startsWith('#!/usr/bin/env node\n')).toBe(true)
    const chunks = [...cli.matchAll(/from "\.\/(chunk-[\w-]+\.js)"|import "\.\/(chunk-[\w-]+\.js)"/g)].map((m) => m[1] ?? m[2])
    expect(chunks.length).toBeGreaterThan(0)
    // The store is defined once, in a chunk the library entries import too.
    expect(cli).not.toMatch(/\bvar Store = class\b/)
    const index = readFileSync(join(pkg, 'dist/index.js'), 'utf8')
    const storeChunk = readdirSync(join(pkg, 'dist')).filter((f) => f.endsWith('.js') && /\bvar Store = class\b/.test(readFileSync(join(pkg, 'dist', f), 'utf8')))
    expect(storeChunk).toHaveLength(1)
    expect(index).toContain(storeChunk[0])
    expect(cli).toContain(storeChunk[0])
  })

  it('is clean for publint', () => {
    const r = spawnSync(bin('publint'), ['--strict', pkg], { cwd: ROOT, encoding: 'utf8' })
    expect(r.stdout + r.stderr).toContain('All good!')
    expect(r.status).toBe(0)
  }, 120_000)

  it('is clean for @arethetypeswrong/cli on every entry (Node 16+ resolution: engines is node >= 20)', () => {
    const r = spawnSync(bin('attw'), ['--pack', pkg, '--profile', 'node16', '--format', 'table-flipped'], { cwd: ROOT, encoding: 'utf8' })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    for (const entry of ['kvstore', 'kvstore/commands', 'kvstore/etcd', 'kvstore/server', 'kvstore/level', 'kvstore/keyv']) {
      expect(r.stdout, entry).toContain(`${entry.replace(/^kvstore/, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).name as string)}`)
    }
  }, 120_000)
})
