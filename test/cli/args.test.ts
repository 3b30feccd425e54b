import { describe, expect, test } from 'vitest'
import { parseArgs } from '../../src/cli/args.js'
import { formatValue, humanDuration, renderTable } from '../../src/cli/output.js'

describe('parseArgs', () => {
  test('reads -name=value, -name value and --name forms', () => {
    const { flags, positionals } = parseArgs(['-a=1', '-b', '2', '--c=3', 'path'])
    expect(flags).toEqual({ a: '1', b: '2', c: '3' })
    expect(positionals).toEqual(['path'])
  })

  test('boolean flags never swallow the next word', () => {
    const { flags, positionals } = parseArgs(['-prefix', 'database/creds/'], ['prefix'])
    expect(flags.prefix).toBe(true)
    expect(positionals).toEqual(['database/creds/'])
  })

  test('keeps every value of a repeated flag', () => {
    const { flags, all } = parseArgs(['-policy=a', '-policy', 'b'])
    expect(all.policy).toEqual(['a', 'b'])
    expect(flags.policy).toBe('b')
  })

  test('a lone - is a positional and -- ends flag parsing', () => {
    const { flags, positionals } = parseArgs(['-', '--', '-not-a-flag'])
    expect(flags).toEqual({})
    expect(positionals).toEqual(['-', '-not-a-flag'])
  })

  test('values may contain = and start with @', () => {
    const { flags, positionals } = parseArgs(['-custom-metadata=k=v', 'jwt=@file'])
    expect(flags['custom-metadata']).toBe('k=v')
    expect(positionals).toEqual(['jwt=@file'])
  })
})

describe('table output', () => {
  test('pads every column but the last to the widest cell plus four spaces', () => {
    expect(
      renderTable(
        ['Key', 'Value'],
        [
          ['a', '1'],
          ['longer', '2'],
        ],
      ),
    ).toBe('Key       Value\n---       -----\na         1\nlonger    2\n')
  })

  test('formats values as Vault does', () => {
    expect(formatValue(['a', 'b'])).toBe('[a b]')
    expect(formatValue({ b: 1, a: 'x' })).toBe('map[a:x b:1]')
    expect(formatValue(null)).toBe('n/a')
    expect(formatValue('')).toBe('n/a')
    expect(formatValue(false)).toBe('false')
  })

  test('prints durations in Go style', () => {
    expect(humanDuration(2764800)).toBe('768h')
    expect(humanDuration(5400)).toBe('1h30m')
    expect(humanDuration(61)).toBe('1m1s')
    expect(humanDuration(0)).toBe('0s')
  })
})
