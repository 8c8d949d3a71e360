/** Argument checks shared by the reference kernels: errors name the kernel and the problem. */

export function checkSize(kernel: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`reference ${kernel}: '${name}' must be a non-negative integer, got ${value}`);
  }
}

export function checkLength(kernel: string, name: string, array: ArrayLike<unknown>, need: number, what: string): void {
  if (array.length < need) {
    throw new RangeError(`reference ${kernel}: '${name}' has ${array.length} elements, needs ${need} (${what})`);
  }
}
