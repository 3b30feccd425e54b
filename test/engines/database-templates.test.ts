import { describe, expect, it } from 'vitest'
import { postgresDialect } from '../../plugins/postgres/plugin.js'
import { mysqlDialect } from '../../plugins/mysql/plugin.js'
import {
  checkedUsernameTemplate,
  generatePassword,
} from '../../src/engines/database/credentials.js'
import { globMatch } from '../../src/engines/database/creds.js'
import {
  formatExpiration,
  parseStatements,
  renderStatements,
} from '../../src/engines/database/statements.js'
import { compileUsernameTemplate } from '../../src/engines/database/username-template.js'

describe('statement templates', () => {
  const render = (sql: string[], dialect = postgresDialect) =>
    renderStatements(
      parseStatements(sql, dialect, 'creation_statements'),
      { name: 'v-a', username: 'v-a', password: 'P-1', expiration: '2030-01-01 00:00:00+0000' },
      dialect,
    )

  it('splits on semicolons outside quotes and $$ bodies', () => {
    expect(render([`CREATE ROLE "{{name}}"; GRANT x TO "{{name}}";`, `SELECT 'a;b'`])).toEqual([
      'CREATE ROLE "v-a"',
      'GRANT x TO "v-a"',
      "SELECT 'a;b'",
    ])
    expect(render([`DO $$ BEGIN EXECUTE 'SELECT 1'; END $$;`])).toEqual([
      `DO $$ BEGIN EXECUTE 'SELECT 1'; END $$`,
    ])
  })

  it('substitutes values inside literals and quoted identifiers', () => {
    expect(
      render([`CREATE ROLE "{{name}}" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`]),
    ).toEqual([`CREATE ROLE "v-a" PASSWORD 'P-1' VALID UNTIL '2030-01-01 00:00:00+0000'`])
    expect(
      render(
        [
          `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON db.* TO \`{{username}}\``,
        ],
        mysqlDialect,
      ),
    ).toEqual([`CREATE USER 'v-a'@'%' IDENTIFIED BY 'P-1'`, 'GRANT SELECT ON db.* TO `v-a`'])
  })

  it('treats backticks as text on PostgreSQL and double quotes as literals on MySQL', () => {
    expect(() => parseStatements(['CREATE ROLE `{{name}}`'], postgresDialect, 'f')).toThrow(
      /must be inside quotes/,
    )
    expect(() => parseStatements(['CREATE USER "{{name}}"'], mysqlDialect, 'f')).toThrow(
      /must be inside quotes/,
    )
  })

  it('refuses generated values outside the safe alphabet', () => {
    const parsed = parseStatements([`CREATE ROLE "{{name}}"`], postgresDialect, 'f')
    expect(() =>
      renderStatements(parsed, { name: 'x"; DROP ROLE y; --' }, postgresDialect),
    ).toThrow(/outside its alphabet/)
  })

  it('takes passwords from printable ASCII except quotes, backticks and backslashes', () => {
    const parsed = parseStatements(
      [`ALTER ROLE "{{name}}" PASSWORD '{{password}}'`],
      postgresDialect,
      'f',
    )
    const password = 'aZ09!#$%&()*+,-./:;<=>?@[]^_{|}~'
    expect(renderStatements(parsed, { name: 'v-a', password }, postgresDialect)).toEqual([
      `ALTER ROLE "v-a" PASSWORD '${password}'`,
    ])
    for (const bad of [
      "it's",
      'say"hi',
      'back`tick',
      'back\\slash',
      'with space',
      'tab\there',
      'é',
    ]) {
      expect(() =>
        renderStatements(parsed, { name: 'v-a', password: bad }, postgresDialect),
      ).toThrow(/outside its alphabet/)
    }
  })

  it('refuses a password with $ inside a $$ body, and allows it outside one', () => {
    const inBody = parseStatements(
      [
        `DO $$ BEGIN EXECUTE 'ALTER ROLE "{{name}}" PASSWORD ''x'''; PERFORM '{{password}}'; END $$`,
      ],
      postgresDialect,
      'f',
    )
    expect(() =>
      renderStatements(inBody, { name: 'v-a', password: 'ab$$cd' }, postgresDialect),
    ).toThrow(/contains '\$', which could end the \$\$ body/)
    expect(() =>
      renderStatements(inBody, { name: 'v-a', password: 'ab$cd' }, postgresDialect),
    ).toThrow(/\$\$ body/)
    expect(
      renderStatements(inBody, { name: 'v-a', password: 'ab-cd' }, postgresDialect)[0],
    ).toContain(`PERFORM 'ab-cd'`)
    const outside = parseStatements(
      [`DO $$ BEGIN NULL; END $$; ALTER ROLE "{{name}}" PASSWORD '{{password}}'`],
      postgresDialect,
      'f',
    )
    expect(renderStatements(outside, { name: 'v-a', password: 'ab$$cd' }, postgresDialect)).toEqual(
      ['DO $$ BEGIN NULL; END $$', `ALTER ROLE "v-a" PASSWORD 'ab$$cd'`],
    )
  })

  it('does not mistake escaped quotes for the end of a literal', () => {
    expect(() => parseStatements([`SELECT 'it''s {{name}}'`], postgresDialect, 'f')).not.toThrow()
    expect(() => parseStatements([`SELECT 'it\\'s' {{name}}`], mysqlDialect, 'f')).toThrow(
      /must be inside quotes/,
    )
  })

  it('formats expirations the way Vault does', () => {
    expect(formatExpiration(new Date('2031-02-03T04:05:06.789Z'))).toBe('2031-02-03 04:05:06+0000')
  })
})

describe('username templates', () => {
  const input = { DisplayName: 'approle', RoleName: 'readonly-long-name' }

  it('renders the PostgreSQL default like Vault', () => {
    const name = compileUsernameTemplate(postgresDialect.defaultUsernameTemplate)(input)
    expect(name).toMatch(/^v-approle-readonly-[A-Za-z0-9]{20}-\d{10}$/)
    expect(name.length).toBeLessThanOrEqual(63)
  })

  it('renders the MySQL default within 32 characters', () => {
    const name = compileUsernameTemplate(mysqlDialect.defaultUsernameTemplate)(input)
    expect(name).toMatch(/^v-approle-readonly-l-[A-Za-z0-9]{11}$/)
  })

  it('supports the documented functions', () => {
    const t = (s: string) => compileUsernameTemplate(s)(input)
    expect(t('{{ .RoleName | uppercase }}')).toBe('READONLY-LONG-NAME')
    expect(t('{{ .RoleName | replace "-" "_" }}')).toBe('readonly_long_name')
    expect(t('{{ .DisplayName | sha256 }}')).toMatch(/^[0-9a-f]{64}$/)
    expect(t('{{ .RoleName | truncate_sha256 12 }}')).toMatch(/^read[0-9a-f]{8}$/)
    expect(t('{{ uuid }}')).toMatch(/^[0-9a-f-]{36}$/)
    expect(t('{{ unix_time_millis }}')).toMatch(/^\d{13}$/)
    expect(t('{{ timestamp "2006-01-02" }}')).toMatch(/^\d{4}-\d{2}-\d{2}$/)
    expect(t('x-{{ printf "%s.%d" .DisplayName 7 | lowercase }}')).toBe('x-approle.7')
  })

  it('rejects unknown functions and fields at compile time', () => {
    expect(() => compileUsernameTemplate('{{ env "HOME" }}')).toThrow(/unknown function/)
    expect(() => compileUsernameTemplate('{{ .Secret }}')).toThrow(/unsupported term/)
  })

  it('maps unsafe display names onto the safe alphabet', () => {
    const generate = checkedUsernameTemplate('{{ .DisplayName }}', 63)
    expect(generate({ DisplayName: `a"b'c d`, RoleName: 'r' })).toBe('a_b_c_d')
  })
})

describe('generated passwords', () => {
  it('are 20 characters with every class from [a-zA-Z0-9-]', () => {
    for (let i = 0; i < 200; i++) {
      const p = generatePassword()
      expect(p).toMatch(/^[A-Za-z0-9-]{20}$/)
      expect(p).toMatch(/[a-z]/)
      expect(p).toMatch(/[A-Z]/)
      expect(p).toMatch(/[0-9]/)
      expect(p).toContain('-')
    }
  })
})

describe('allowed_roles globs', () => {
  it('match names and star patterns only', () => {
    expect(globMatch('*', 'x')).toBe(true)
    expect(globMatch('app-*', 'app-ro')).toBe(true)
    expect(globMatch('app-*', 'other')).toBe(false)
    expect(globMatch('a.b', 'axb')).toBe(false)
  })
})
