/** @jsxImportSource hono/jsx */
/** The page for a refusal or an internal error. */
import type { Child } from "hono/jsx";
import { Notice } from "../components.tsx";

/** A refusal or a missing page, with a way back. */
export function ErrorPage(props: { status: number; message: string }): Child {
  return (
    <>
      <h1>{props.status === 404 ? "Not found" : props.status === 403 ? "Not allowed" : props.status >= 500 ? "Something went wrong" : "That did not work"}</h1>
      <Notice kind="error">{props.message}</Notice>
      <p>
        <a href="/ui">Back to the overview</a>
      </p>
    </>
  );
}
