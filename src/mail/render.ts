import { render } from "@react-email/render";
import { createElement, type FunctionComponent } from "react";
import EmailChange, { type EmailChangeProps, subject as emailChangeSubject } from "../../emails/email-change";
import EmailChanged, { type EmailChangedProps, subject as emailChangedSubject } from "../../emails/email-changed";
import Invitation, { type InvitationProps, subject as invitationSubject } from "../../emails/invitation";
import NewSignIn, { type NewSignInProps, subject as newSignInSubject } from "../../emails/new-sign-in";
import PasswordChanged, {
  type PasswordChangedProps,
  subject as passwordChangedSubject,
} from "../../emails/password-changed";
import PasswordReset, { type PasswordResetProps, subject as passwordResetSubject } from "../../emails/password-reset";
import SecurityNotice, { type SecurityNoticeProps, subject as securityNoticeSubject } from "../../emails/security-notice";
import SignInCode, { type SignInCodeProps, subject as signInCodeSubject } from "../../emails/sign-in-code";
import VerifyEmail, { type VerifyEmailProps, subject as verifyEmailSubject } from "../../emails/verify-email";

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
};

export type TemplateName = keyof TemplateProps;

type TemplateModule<P> = { component: FunctionComponent<P>; subject: (props: P) => string };

const templates: { [K in TemplateName]: TemplateModule<TemplateProps[K]> } = {
  "verify-email": { component: VerifyEmail, subject: verifyEmailSubject },
  "sign-in-code": { component: SignInCode, subject: signInCodeSubject },
  "password-reset": { component: PasswordReset, subject: passwordResetSubject },
  "email-change": { component: EmailChange, subject: emailChangeSubject },
  "email-changed": { component: EmailChanged, subject: emailChangedSubject },
  "password-changed": { component: PasswordChanged, subject: passwordChangedSubject },
  "new-sign-in": { component: NewSignIn, subject: newSignInSubject },
  invitation: { component: Invitation, subject: invitationSubject },
  "security-notice": { component: SecurityNotice, subject: securityNoticeSubject },
};

export const TEMPLATE_NAMES = Object.keys(templates) as TemplateName[];

export type RenderedEmail = { subject: string; html: string; text: string };

export async function renderEmail<K extends TemplateName>(name: K, props: TemplateProps[K]): Promise<RenderedEmail> {
  const tpl = templates[name] as TemplateModule<TemplateProps[K]>;
  if (!tpl) throw new Error(`unknown email template "${name}"`);
  const element = createElement(tpl.component, props);
  const [html, text] = await Promise.all([render(element), render(element, { plainText: true })]);
  return { subject: tpl.subject(props), html, text };
}
