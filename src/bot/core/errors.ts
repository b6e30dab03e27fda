/**
 * An error meant for the person who sent the command: its message is shown as is (ephemeral where the platform
 * allows). Anything else that goes wrong is logged and answered with a generic apology.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
}

/** Text to show the user for any error: UserError and the engine's BadRequestError verbatim, others generic. */
export function userMessageFor(err: unknown): string {
  if (err instanceof Error && (err.name === 'UserError' || err.name === 'BadRequestError')) return err.message;
  return 'Something went wrong on our side while handling that. Please try again in a moment.';
}
