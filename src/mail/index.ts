import type { Transporter } from "nodemailer";
import { describeError } from "../errors";
import { createLogger, type Logger } from "../logger";
import { type Brand, brandOf } from "../branding";
import type { Config } from "../config";
import { renderEmail, type TemplateName, type TemplateProps } from "./render";

export type { RenderedEmail, TemplateLoaders, TemplateName, TemplateProps } from "./render";
export { registerTemplates, renderEmail, TEMPLATE_NAMES } from "./render";

export type MailMessage = { to: string; subject: string; html: string; text: string };

export interface Mailer {
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

const SMTP_TIMEOUT_MS = 5_000;

/** Sends through an SMTP server given as a URL, e.g. `smtp://user:pass@host:587` or `smtps://host:465`. */
export class SmtpMailer implements Mailer {
  private transport?: Promise<Transporter>;

  constructor(
    private readonly smtpUrl: string,
    private readonly from: string,
  ) {}

  /** nodemailer loads on the first email, so an idle server does not carry it. */
  private connect(): Promise<Transporter> {
    this.transport ??= Promise.all([import("nodemailer"), import("nodemailer/lib/smtp-transport")]).then(
      ([{ default: nodemailer }, { default: SMTPTransport }]) =>
        // Not `createTransport(url, {...})`: its 2nd argument is message defaults, and an options object with `url`
        // drops every other key. SMTPTransport merges `url` with the explicit options (URL query params win).
        nodemailer.createTransport(
          new SMTPTransport({
            url: this.smtpUrl,
            connectionTimeout: SMTP_TIMEOUT_MS,
            greetingTimeout: SMTP_TIMEOUT_MS,
            socketTimeout: SMTP_TIMEOUT_MS,
          }),
        ),
    );
    return this.transport;
  }

  async send(message: MailMessage): Promise<void> {
    const transport = await this.connect();
    await transport.sendMail({
      from: this.from,
      to: message.to,
      subject: message.subject,
      html: message.html,
      text: message.text,
    });
  }

  async close(): Promise<void> {
    if (this.transport) (await this.transport).close();
  }
}

/**
 * MAIL_TRANSPORT=console (the default outside production without SMTP_URL): each mail is a log line like the others
 * (`time`, `level: info`, `msg: mail`) with the text body, so that a developer can read the code or link and sign in.
 * It follows LOG_LEVEL: `silent` or `warn` prints no mail.
 */
export class ConsoleMailer implements Mailer {
  constructor(private readonly logger: Logger = createLogger("info")) {}

  async send(message: MailMessage): Promise<void> {
    this.logger.info("mail", { to: message.to, subject: message.subject, text: message.text });
  }

  async close(): Promise<void> {}
}

/** Keeps mails in memory; for tests. */
export class MemoryMailer implements Mailer {
  outbox: MailMessage[] = [];

  async send(message: MailMessage): Promise<void> {
    this.outbox.push(message);
  }

  /** The latest message sent to `to` (address compared case-insensitively). */
  last(to: string): MailMessage | undefined {
    const want = to.toLowerCase();
    for (let i = this.outbox.length - 1; i >= 0; i--) {
      const m = this.outbox[i];
      if (m && m.to.toLowerCase() === want) return m;
    }
    return undefined;
  }

  clear(): void {
    this.outbox = [];
  }

  async close(): Promise<void> {}
}

export type MailTransport = "smtp" | "console";

/** The transport MAIL_TRANSPORT names (by default SMTP when there is an SMTP_URL, else the console). */
export function createMailer(opts: { smtpUrl?: string; from: string; transport?: MailTransport; logger?: Logger }): Mailer {
  const transport = opts.transport ?? (opts.smtpUrl ? "smtp" : "console");
  return transport === "smtp" && opts.smtpUrl ? new SmtpMailer(opts.smtpUrl, opts.from) : new ConsoleMailer(opts.logger);
}

/** Renders template `name` with `props` and sends it to `to`. */
export async function sendEmail<K extends TemplateName>(
  mailer: Mailer,
  to: string,
  name: K,
  props: TemplateProps[K],
  brand?: Brand,
): Promise<void> {
  const { subject, html, text } = await renderEmail(name, props, brand);
  await mailer.send({ to, subject, html, text });
}

/**
 * Renders the mail inside the request, so the work is the same whether or not it goes out, then hands it to the
 * mailer without waiting: a slow or failing SMTP server neither delays the answer (and so reveals which emails exist)
 * nor fails it; a failure is logged, never the mail's content. With no recipient the mail is rendered, not sent.
 * `after`: work the mail depends on (the row that makes its link work), left to finish after the answer too; the mail
 * goes out once it has, and not at all if it fails.
 */
export async function sendEmailDetached<K extends TemplateName>(
  ports: { mailer: Mailer; logger: Logger; config: Pick<Config, "APP_NAME" | "APP_LOGO_URL" | "BRAND_COLOR"> },
  to: string | null | undefined,
  name: K,
  props: TemplateProps[K],
  after?: Promise<unknown>,
): Promise<void> {
  const rendered = await renderEmail(name, props, brandOf(ports.config));
  const log = (error: unknown) => ports.logger.error("mail not sent", { template: name, error: describeError(error) });
  if (!to) {
    after?.catch(log);
    return;
  }
  (after ?? Promise.resolve()).then(() => ports.mailer.send({ to, ...rendered })).catch(log);
}
