/**
 * Stint's storage tables. Each module declares its own tables next to its code by augmenting this
 * interface (`declare module '../storage/tables.js' { interface Tables { ... } }`), so the schema
 * stays close to the code that owns it while Kysely still sees one typed database.
 *
 * Conventions: app-generated string ids, epoch milliseconds as BIGINT, booleans as 0/1 integers,
 * JSON as text, ciphertext as base64 text produced by the barrier.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Tables {}
