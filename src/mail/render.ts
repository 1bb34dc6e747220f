import { createElement, type FunctionComponent } from "react";
import { BrandContext } from "../../emails/brand";
import type { Brand } from "../branding";
import type { NewSignInProps } from "../../emails/new-sign-in";
import type { SecurityNoticeProps } from "../../emails/security-notice";
import type { SignInMethodChangedProps } from "../../emails/sign-in-method-changed";

/**
 * Template name -> props type. The core's templates are listed here; each plugin adds its own from its folder by
 * declaration merging (`declare module "../../src/mail/render" { interface TemplateProps { invitation: ... } }`) and
 * hands their loaders to the core in its definition's `emails`.
 */
export interface TemplateProps {
  "new-sign-in": NewSignInProps;
  "security-notice": SecurityNoticeProps;
  "sign-in-method-changed": SignInMethodChangedProps;
}

export type TemplateName = keyof TemplateProps;

export type TemplateModule<P> = { default: FunctionComponent<P>; subject: (props: P) => string };

/** How a template is loaded: on the first email, not at start, since react-email's components weigh about 70 MB. */
export type TemplateLoaders = { [K in TemplateName]?: () => Promise<TemplateModule<TemplateProps[K]>> };

const templates: TemplateLoaders = {
  "new-sign-in": () => import("../../emails/new-sign-in"),
  "security-notice": () => import("../../emails/security-notice"),
  "sign-in-method-changed": () => import("../../emails/sign-in-method-changed"),
};

/** Every template known so far: the core's, then each plugin's as the composition root registers them. */
export const TEMPLATE_NAMES = Object.keys(templates) as TemplateName[];

/** Adds a plugin's templates (src/plugins.ts does, for every plugin it lists); a name is registered once. */
export function registerTemplates(loaders: TemplateLoaders): void {
  for (const [name, load] of Object.entries(loaders) as Array<[TemplateName, TemplateLoaders[TemplateName]]>) {
    if (templates[name] && templates[name] !== load) throw new Error(`email template "${name}" is registered twice`);
    if (templates[name]) continue;
    (templates as Record<string, unknown>)[name] = load;
    TEMPLATE_NAMES.push(name);
  }
}

export type RenderedEmail = { subject: string; html: string; text: string };

export async function renderEmail<K extends TemplateName>(name: K, props: TemplateProps[K], brand?: Brand): Promise<RenderedEmail> {
  const load = templates[name] as (() => Promise<TemplateModule<TemplateProps[K]>>) | undefined;
  if (!load) throw new Error(`unknown email template "${name}"`);
  const [tpl, { render }] = await Promise.all([load(), import("@react-email/render")]);
  const template = createElement(tpl.default, props);
  const element = brand ? createElement(BrandContext.Provider, { value: brand }, template) : template;
  const [html, text] = await Promise.all([render(element), render(element, { plainText: true })]);
  return { subject: tpl.subject(props), html, text };
}
