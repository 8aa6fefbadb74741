/** @jsxImportSource hono/jsx */
/** The secrets page: names only, never values. */
import type { Child } from "hono/jsx";
import { Table } from "../components.tsx";

/** Secret names (values are never shown, nor sent to the browser). */
export function SecretsPage(props: { names: string[] }): Child {
  return (
    <>
      <h1>Secrets</h1>
      <p class="hint">Names only: values are encrypted at rest and never leave the server. Set them with POST /api/secrets (admin).</p>
      {props.names.length === 0 ? (
        <p class="muted">No secrets stored.</p>
      ) : (
        <Table head={["Name"]} testId="secrets">
          {props.names.map((n) => (
            <tr>
              <td>
                <code>{n}</code>
              </td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
