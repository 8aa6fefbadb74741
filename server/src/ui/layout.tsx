/** @jsxImportSource hono/jsx */
/** The page frame: head, skip link, navigation, the signed-in user and sign-out, and the main region. */
import type { Child } from "hono/jsx";
import type { Principal } from "../auth.ts";
import { ASSET_VERSION } from "./assets.ts";

export type Section = "overview" | "pipelines" | "runs" | "backfills" | "secrets" | "login";

const NAV: Array<{ section: Section; href: string; label: string }> = [
  { section: "overview", href: "/ui", label: "Overview" },
  { section: "pipelines", href: "/ui/pipelines", label: "Pipelines" },
  { section: "runs", href: "/ui/runs", label: "Runs" },
  { section: "backfills", href: "/ui/backfills", label: "Backfills" },
  { section: "secrets", href: "/ui/secrets", label: "Secrets" },
];

export interface LayoutProps {
  title: string;
  section: Section;
  principal: Principal | null;
  csrf: string;
  /** False when the server runs with authentication off: every visitor is an admin. */
  authEnabled: boolean;
  children?: Child;
}

/** The whole page around `children`. */
export function Layout(props: LayoutProps): Child {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · kiln`}</title>
        {/* no favicon: an empty one keeps browsers from asking for /favicon.ico */}
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={`/ui/static/app.css?v=${ASSET_VERSION}`} />
        <script src={`/ui/static/app.js?v=${ASSET_VERSION}`} defer></script>
      </head>
      <body>
        <a class="skip-link" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/ui">
            kiln
          </a>
          {props.section !== "login" ? (
            <nav aria-label="main">
              <ul>
                {NAV.map((item) => (
                  <li>
                    <a href={item.href} {...(item.section === props.section ? { "aria-current": "page" } : {})}>
                      {item.label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          ) : null}
          {props.principal && props.section !== "login" ? (
            <div class="who">
              <span title={`role: ${props.principal.role}`}>
                {props.principal.name} ({props.principal.role})
              </span>
              {props.authEnabled ? (
                <form method="post" action="/ui/logout" class="inline-form">
                  <input type="hidden" name="_csrf" value={props.csrf} />
                  <button type="submit" class="link-button">
                    Sign out
                  </button>
                </form>
              ) : null}
            </div>
          ) : null}
        </header>
        {!props.authEnabled ? (
          <div class="notice notice-error banner" role="alert">
            Authentication is off (--no-auth): anyone who reaches this server can change anything.
          </div>
        ) : null}
        <main id="main" tabindex={-1}>
          {props.children}
        </main>
      </body>
    </html>
  );
}
