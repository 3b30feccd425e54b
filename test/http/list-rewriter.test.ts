import { describe, expect, it } from 'vitest'
import { createListRewriter } from '../../src/http/list-method.js'

/** Feeds `reads` to a fresh rewriter; returns what the parser would get and the LIST flags. */
function run(reads: string[]): { out: string; lists: boolean[] } {
  const lists: boolean[] = []
  const rewriter = createListRewriter((isList) => lists.push(isList))
  const out = reads.map((r) => rewriter.write(Buffer.from(r, 'latin1')).toString('latin1')).join('')
  return { out, lists }
}

const post = (body: string) =>
  `POST /v1/kv/a HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: ${body.length}\r\n\r\n${body}`
const chunked = (chunks: string[]) =>
  'PUT /v1/kv/b HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n' +
  chunks.map((c) => `${c.length.toString(16)};x=y\r\n${c}\r\n`).join('') +
  '0\r\nTrailer: LIST /v1/t HTTP/1.1\r\n\r\n'
const list = (path: string) => `LIST /v1/${path} HTTP/1.1\r\nHost: x\r\n\r\n`

// A stream with a LIST at every kind of boundary and `LIST /` inside every kind of body.
const stream = [
  '\r\n',
  list('a'),
  post('LIST /v1/x HTTP/1.1\r\n\r\n'),
  '\r\n\r\n',
  list('b'),
  chunked(['LIST /v1/y', '\r\nLIST /v1/z HTTP/1.1\r\n\r\n']),
  'LOCK /v1/c HTTP/1.1\r\n\r\n',
  list('d'),
  'GET /v1/e HTTP/1.1\r\nContent-Length: 6\r\n\r\nLIST /',
  'LISTEN /v1/f HTTP/1.1\r\n\r\n',
  list('g'),
].join('')
// The request lines are those of paths a, b, d and g; other `LIST /` are in bodies and trailers.
const expected = stream.replace(/(^|\n)LIST \/v1\/([abdg]) /g, '$1LOCK /v1/$2 ')

describe('the LIST rewriter', () => {
  it('rewrites LIST request lines only, and reports each request line in order', () => {
    const { out, lists } = run([stream])
    expect(out).toBe(expected)
    expect(out.match(/LIST \//g)).toHaveLength(5)
    expect(lists).toEqual([true, false, true, false, false, true, false, false, true])
  })

  it('gives the same bytes and flags however the stream is cut into reads', () => {
    const whole = run([stream])
    // Every single cut, then pseudo-random cuts into many pieces.
    for (let cut = 0; cut <= stream.length; cut++) {
      const got = run([stream.slice(0, cut), stream.slice(cut)])
      expect(got.out, `cut at ${cut}`).toBe(whole.out)
      expect(got.lists).toEqual(whole.lists)
    }
    let seed = 7
    for (let round = 0; round < 50; round++) {
      const reads: string[] = []
      for (let at = 0; at < stream.length;) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31
        const size = 1 + (seed % 9)
        reads.push(stream.slice(at, at + size))
        at += size
      }
      const got = run(reads)
      expect(got.out).toBe(whole.out)
      expect(got.lists).toEqual(whole.lists)
    }
  })

  it('holds back a partial "LIST" until the byte that decides it', () => {
    const lists: boolean[] = []
    const rewriter = createListRewriter((isList) => lists.push(isList))
    expect(rewriter.write(Buffer.from('LIS')).toString()).toBe('')
    expect(rewriter.write(Buffer.from('T')).toString()).toBe('')
    expect(rewriter.write(Buffer.from(' /v1/a HTTP/1.1\r\n')).toString()).toBe(
      'LOCK /v1/a HTTP/1.1\r\n',
    )
    expect(rewriter.write(Buffer.from('\r\nLI')).toString()).toBe('\r\n')
    expect(rewriter.write(Buffer.from('NK /v1/b HTTP/1.1\r\n\r\n')).toString()).toBe(
      'LINK /v1/b HTTP/1.1\r\n\r\n',
    )
    expect(lists).toEqual([true, false])
  })

  it('stops rewriting, and passes bytes through, after framing the parser would refuse', () => {
    for (const bad of [
      'POST /v1/a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n',
      'POST /v1/a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      'POST /v1/a HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
      'POST /v1/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
      'POST /v1/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'POST /v1/a HTTP/1.1\r\nContent-Length: 3\r\n  4\r\n\r\n',
    ]) {
      const { out, lists } = run([bad, list('a')])
      expect(out, bad).toBe(bad + list('a'))
      expect(lists).toEqual([false])
    }
  })
})
