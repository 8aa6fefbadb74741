/** @jsxImportSource hono/jsx */
/** The sign-in page. */
import type { Child } from "hono/jsx";
import { Notice } from "../components.tsx";

/** The sign-in form. */
export function LoginPage(props: { next: string; error?: string; username?: string }): Child {
  return (
    <div class="login">
      <h1>Sign in to kiln</h1>
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      <form method="post" action="/ui/login" class="stack">
        <input type="hidden" name="next" value={props.next} />
        <label>
          Username
          <input name="username" autocomplete="username" required autofocus value={props.username ?? ""} />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <button type="submit">Sign in</button>
      </form>
      <p class="hint">
        No user yet? Create one with <code>kiln user create --project P --username U --role admin --password-stdin</code>.
      </p>
    </div>
  );
}
