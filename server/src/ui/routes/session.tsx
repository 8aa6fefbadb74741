/** @jsxImportSource hono/jsx */
/** Signing in (public: the form and its POST) and out (behind the session, with its CSRF token). */
import { ApiError, STATUS } from "../../errors.ts";
import { clientAddress } from "../../client-address.ts";
import { signIn, signOut, TooManySignInsError } from "../../routes/sessions.ts";
import { LoginPage } from "../pages/login.tsx";
import { page, type UiRoutes } from "../render.tsx";
import { clearSessionCookie, safeNext, sameOrigin, sessionCookie, setSessionCookie } from "../session.ts";
import { KilnError } from "@kiln/core";

/** GET and POST /login: registered before the session check. */
export const signInRoutes: UiRoutes = (ui, deps, verifySession) => {
  ui.get("/login", async (c) => {
    if (!deps.authEnabled) return c.redirect("/ui", 303);
    const token = sessionCookie(c);
    const next = safeNext(c.req.query("next"));
    if (token !== undefined && (await verifySession(token))) return c.redirect(next, 303);
    return page(c, deps, "Sign in", "login", <LoginPage next={next} />);
  });

  ui.post("/login", async (c) => {
    if (!sameOrigin(c)) throw new KilnError("forbidden", "This form was sent from another site; it was refused.");
    const body = await c.req.parseBody();
    const username = typeof body.username === "string" ? body.username.slice(0, 1024) : "";
    const password = typeof body.password === "string" ? body.password.slice(0, 1024) : "";
    const next = safeNext(typeof body.next === "string" ? body.next : undefined);
    if (username === "" || password === "") return page(c, deps, "Sign in", "login", <LoginPage next={next} username={username} error="Enter your username and password." />, STATUS.invalid_request);
    try {
      const session = await signIn(deps, username, password, clientAddress(c));
      setSessionCookie(c, session.token, session.expiresAt, deps.clock.now());
      return c.redirect(next, 303);
    } catch (error) {
      if (error instanceof TooManySignInsError) {
        c.header("retry-after", String(Math.ceil(error.retryAfterMs / 1000)));
        return page(c, deps, "Sign in", "login", <LoginPage next={next} username={username} error={`Too many sign-in attempts from here: try again in ${Math.ceil(error.retryAfterMs / 1000)} s.`} />, STATUS.too_many_requests);
      }
      if (error instanceof ApiError && error.code === "unauthenticated") return page(c, deps, "Sign in", "login", <LoginPage next={next} username={username} error="Invalid username or password." />, STATUS.unauthenticated);
      throw error;
    }
  });
};

/** POST /logout: registered after the session check. */
export const signOutRoutes: UiRoutes = (ui, deps) => {
  ui.post("/logout", async (c) => {
    const token = sessionCookie(c);
    if (token !== undefined) await signOut(deps, token);
    clearSessionCookie(c);
    return c.redirect("/ui/login", 303);
  });
};
