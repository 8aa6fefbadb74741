/** A mistake in what the user asked for: printed as one line, exit code 2, nothing written. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
