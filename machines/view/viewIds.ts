/** Host, VM and controller ids: the same rule as subject tokens (actors/subjects.ts), restated here because machines stay pure. */
const viewIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidViewId(id: string): boolean {
  return viewIdPattern.test(id);
}
