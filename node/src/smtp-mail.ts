/** Mail for Mage's email_config notifications, over SMTP with nodemailer (core cannot open sockets). */
import type * as notify from "@kiln/core/notify";

/**
 * A MailSender: one SMTP connection per mail (notifications are rare), TLS from the first byte
 * with `smtp_ssl`, STARTTLS before logging in when credentials are given (as Mage does), and
 * plain SMTP to a server that asks for no login (a local relay).
 */
export const smtpMailSender: notify.MailSender = async (smtp, message) => {
  const loginWithStarttls = smtp.starttls && smtp.user !== null && smtp.password !== null && !smtp.ssl;
  // imported when a mail is sent: notifications are rare, and every process loading @kiln/node would pay for it
  const { default: nodemailer } = await import("nodemailer");
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.ssl,
    requireTLS: loginWithStarttls,
    // without credentials Mage never calls starttls(): do not upgrade unasked
    ignoreTLS: !smtp.ssl && !loginWithStarttls,
    ...(smtp.user !== null && smtp.password !== null ? { auth: { user: smtp.user, pass: smtp.password } } : {}),
  });
  try {
    await transport.sendMail({ from: message.from, to: message.to.join(", "), subject: message.subject, text: message.text });
  } finally {
    transport.close();
  }
};
