/**
 * The key tree of a secret without its values (`<mount>/subkeys/<path>`): nested objects stay
 * objects, every other value becomes `null`. `depth` 0 means unlimited; at the depth limit an
 * object also becomes `null`.
 */
export function subkeys(
  data: Record<string, unknown>,
  depth: number,
  level = 1,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data)) {
    const nested = value !== null && typeof value === 'object' && !Array.isArray(value)
    out[key] =
      nested && (depth === 0 || level < depth)
        ? subkeys(value as Record<string, unknown>, depth, level + 1)
        : null
  }
  return out
}
