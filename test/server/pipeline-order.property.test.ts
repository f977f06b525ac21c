// Pipelined requests overlap on the server (appliesAtCall); the replies must be exactly those
// of the same requests run one after another. Model: a session on a second store, awaited
// command by command; the server's replies are compared byte for byte with the model's,
// encoded the same way.
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSession } from '../../src/commands/session.js'
import { encodeReply } from '../../src/server/resp-encoder.js'
import { createServer, type KvServer } from '../../src/server/index.js'
import { Store } from '../../src/store.js'
import { RespClient } from '../helpers/resp-client.js'
import { numRuns } from '../helpers/values.js'

let store: Store<unknown>
let server: KvServer
let port: number

beforeAll(async () => {
  store = await Store.open<unknown>({ expirySweepIntervalMs: 0 })
  server = createServer(store)
  port = (await server.listen(0)).port
})

afterAll(async () => {
  await server.close()
  await store.close()
})

const key = fc.constantFrom('a', 'b', 'c')
const value = fc.constantFrom('1', '2', 'x', '10')
const command: fc.Arbitrary<string[]> = fc.oneof(
  fc.tuple(key, value).map(([k, v]) => ['SET', k, v]),
  fc.tuple(key, value).map(([k, v]) => ['SET', k, v, 'GET']),
  fc.tuple(key, value).map(([k, v]) => ['SET', k, v, 'NX']),
  key.map((k) => ['GET', k]),
  key.map((k) => ['DEL', k]),
  key.map((k) => ['INCR', k]),
  fc.tuple(key, value).map(([k, v]) => ['LPUSH', k, v]),
  key.map((k) => ['LPOP', k]),
  key.map((k) => ['RPOP', k, '2']),
  key.map((k) => ['LRANGE', k, '0', '-1']),
  key.map((k) => ['LINDEX', k, '0']),
  fc.tuple(key, value).map(([k, v]) => ['LSET', k, '0', v]),
  fc.tuple(key, value).map(([k, v]) => ['HSET', k, 'f', v]),
  key.map((k) => ['HGETALL', k]),
  key.map((k) => ['TYPE', k]),
  fc.constant<string[]>(['EXISTS', 'a', 'b', 'c']),
  fc.constant<string[]>(['DBSIZE']),
  fc.constant<string[]>(['KEYS', '*']),
  fc.constant<string[]>(['MULTI']),
  fc.constant<string[]>(['EXEC']),
  fc.constant<string[]>(['FLUSHDB']),
)

describe('pipelined requests', () => {
  it('get the replies of the same requests run one at a time', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 60 }), async (cmds) => {
        await store.clear()
        const model = await Store.open<unknown>({ expirySweepIntervalMs: 0 })
        const session = createSession(model)
        const expected: string[] = []
        for (const c of cmds) expected.push(encodeReply(await session.execute(c), 2))
        await model.close()
        const client = await RespClient.connect(port)
        try {
          const got = await client.pipeline([...cmds, ['DISCARD']])
          expect(got.slice(0, cmds.length).map((r) => r.raw.toString('utf8'))).toEqual(expected)
        } finally {
          await client.close()
        }
      }),
      { numRuns: numRuns(150) },
    )
  }, 120_000)
})
