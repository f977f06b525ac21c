// Regression: in text mode every reply is one line, so scripts can read replies line by line:
// a value holding a newline or another control character is printed quoted, as redis-cli does.
import { describe, expect, it } from 'vitest'
import { formatReply } from '../../src/cli/format.js'
import { tokenize } from '../../src/commands/tokenizer.js'
import { createSession, Store } from '../../src/index.js'

describe('text replies stay on one line', () => {
  it('quotes values with control characters and round-trips them through the tokenizer', async () => {
    const store = await Store.open<unknown>({})
    const session = createSession(store)
    await session.execute(['SET', 'k', 'line one\nline two\r\t\x01'])
    await session.execute(['RPUSH', 'l', 'a\nb', 'plain', '"quoted"'])
    const get = formatReply(await session.execute(['GET', 'k']))
    expect(get.split('\n')).toHaveLength(1)
    expect(tokenize(get)).toEqual(['line one\nline two\r\t\x01'])
    const range = formatReply(await session.execute(['LRANGE', 'l', '0', '-1']))
    expect(range.split('\n')).toEqual(['1) "a\\nb"', '2) plain', '3) "\\"quoted\\""'])
    expect(formatReply(await session.execute(['SET', 'p', 'Alice Smith']))).toBe('OK')
    expect(formatReply(await session.execute(['GET', 'p']))).toBe('Alice Smith')
    await store.close()
  })
})
