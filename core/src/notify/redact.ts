/**
 * Keeping notification secrets out of log lines and stored errors. A Slack incoming-webhook URL
 * is a credential (anyone holding it can post to the channel), and generic webhook URLs often
 * carry tokens in their path or query, so every target URL is shown as scheme and host only.
 */

const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>`]+/gi;

/** `https://hooks.slack.com/services/T/B/x` -> `https://hooks.slack.com/***`: everything after the host goes. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // An unparseable URL cannot be trusted to split cleanly into a public and a secret part.
    return "<invalid URL>";
  }
  // Rebuilding from protocol and host (not `origin`, which is "null" for some schemes) also
  // drops user:password@.
  const hasMore = parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "";
  return `${parsed.protocol}//${parsed.host}${hasMore ? "/***" : ""}`;
}

/**
 * `text` with every URL in it redacted, and with `secretUrl` (and its path and query, which an
 * HTTP client may quote without the host) removed even where it does not appear as a full URL.
 */
export function redactText(text: string, secretUrl?: string): string {
  let out = text;
  if (secretUrl) {
    out = out.split(secretUrl).join(redactUrl(secretUrl));
    let rest: string | null = null;
    try {
      const u = new URL(secretUrl);
      rest = `${u.pathname}${u.search}`;
    } catch {
      rest = null;
    }
    // a bare "/" would redact every slash in the message; short paths are not secrets anyway
    if (rest && rest.length > 1) out = out.split(rest).join("/***");
  }
  return out.replace(URL_IN_TEXT, (match) => {
    // sentence punctuation after a URL ("POST https://x/y: refused") is not part of it
    const trail = /[.,;:!?)\]]+$/.exec(match)?.[0] ?? "";
    return redactUrl(match.slice(0, match.length - trail.length)) + trail;
  });
}
