import { createElement, type FunctionComponent } from "react";
import type { EmailChangeProps } from "../../emails/email-change";
import type { EmailChangedProps } from "../../emails/email-changed";
import type { InvitationProps } from "../../emails/invitation";
import type { NewSignInProps } from "../../emails/new-sign-in";
import type { PasswordChangedProps } from "../../emails/password-changed";
import type { PasswordResetProps } from "../../emails/password-reset";
import type { SecurityNoticeProps } from "../../emails/security-notice";
import type { SignInCodeProps } from "../../emails/sign-in-code";
import type { SignInMethodChangedProps } from "../../emails/sign-in-method-changed";
import type { VerifyEmailProps } from "../../emails/verify-email";

/** Template name -> props type. */
export type TemplateProps = {
  "verify-email": VerifyEmailProps;
  "sign-in-code": SignInCodeProps;
  "password-reset": PasswordResetProps;
  "email-change": EmailChangeProps;
  "email-changed": EmailChangedProps;
  "password-changed": PasswordChangedProps;
  "new-sign-in": NewSignInProps;
  invitation: InvitationProps;
  "security-notice": SecurityNoticeProps;
  "sign-in-method-changed": SignInMethodChangedProps;
};

export type TemplateName = keyof TemplateProps;

type TemplateModule<P> = { default: FunctionComponent<P>; subject: (props: P) => string };

/**
 * Templates load on the first email, not at start: react-email's components weigh about 70 MB of memory,
 * which a server that sends no mail (or has not yet) should not carry.
 */
const templates: { [K in TemplateName]: () => Promise<TemplateModule<TemplateProps[K]>> } = {
  "verify-email": () => import("../../emails/verify-email"),
  "sign-in-code": () => import("../../emails/sign-in-code"),
  "password-reset": () => import("../../emails/password-reset"),
  "email-change": () => import("../../emails/email-change"),
  "email-changed": () => import("../../emails/email-changed"),
  "password-changed": () => import("../../emails/password-changed"),
  "new-sign-in": () => import("../../emails/new-sign-in"),
  invitation: () => import("../../emails/invitation"),
  "security-notice": () => import("../../emails/security-notice"),
  "sign-in-method-changed": () => import("../../emails/sign-in-method-changed"),
};

export const TEMPLATE_NAMES = Object.keys(templates) as TemplateName[];

export type RenderedEmail = { subject: string; html: string; text: string };

export async function renderEmail<K extends TemplateName>(name: K, props: TemplateProps[K]): Promise<RenderedEmail> {
  const load = templates[name] as (() => Promise<TemplateModule<TemplateProps[K]>>) | undefined;
  if (!load) throw new Error(`unknown email template "${name}"`);
  const [tpl, { render }] = await Promise.all([load(), import("@react-email/render")]);
  const element = createElement(tpl.default, props);
  const [html, text] = await Promise.all([render(element), render(element, { plainText: true })]);
  return { subject: tpl.subject(props), html, text };
}
