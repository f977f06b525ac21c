#!/usr/bin/env node
// Summarise a Stryker JSON report (reports/mutation/mutation.json by default): the score
// per file as Stryker computes it, and every surviving or uncovered mutant with its line:column,
// mutator and replacement, so they can be killed or marked equivalent one by one.
//   node scripts/mutation-summary.mjs [report.json] [--survivors]
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const file = args.find((a) => !a.startsWith('--')) ?? 'reports/mutation/mutation.json'
const listSurvivors = args.includes('--survivors')
const report = JSON.parse(readFileSync(file, 'utf8'))

const rows = []
const survivors = []
for (const [name, f] of Object.entries(report.files)) {
  const c = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, CompileError: 0, RuntimeError: 0, Ignored: 0 }
  for (const m of f.mutants) {
    c[m.status] = (c[m.status] ?? 0) + 1
    if (m.status === 'Survived' || m.status === 'NoCoverage') {
      survivors.push(`${name}:${m.location.start.line}:${m.location.start.column}  ${m.status}  ${m.mutatorName}  ${JSON.stringify(m.replacement ?? '')}`)
    }
  }
  const detected = c.Killed + c.Timeout
  const valid = detected + c.Survived + c.NoCoverage
  rows.push([name, valid === 0 ? 'n/a' : ((100 * detected) / valid).toFixed(2), c.Killed, c.Timeout, c.Survived, c.NoCoverage, c.CompileError + c.RuntimeError, c.Ignored])
}
console.log('| file | score | killed | timeout | survived | no cov | errors | ignored |')
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
if (listSurvivors) {
  console.log('')
  for (const s of survivors) console.log(s)
}
