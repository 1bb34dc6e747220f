import type { ReactNode } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import type { Brand } from "../../src/branding";

/** What a form shows after a failed submission: one message for the form, and one per field, by field name. */
export type FormErrors = { form?: string; fields: Record<string, string> };
export const noErrors: FormErrors = { fields: {} };

/** Where the pages live and what they look like; the same for every page of one server. */
export type PageFrame = { brand: Brand; base: string; stylesheet: string; acceptUrl: string; emailCode: boolean };

export function renderPage(element: ReactNode): string {
  return `<!doctype html>${renderToStaticMarkup(element)}`;
}

function Layout({ frame, title, wide, children }: { frame: PageFrame; title: string; wide?: boolean; children: ReactNode }) {
  const { brand } = frame;
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <title>{`${title} · ${brand.name}`}</title>
        <link rel="stylesheet" href={frame.stylesheet} />
      </head>
      <body>
        <main className={wide ? "wide" : undefined}>
          <header className="brand">
            {brand.logoUrl ? <img src={brand.logoUrl} alt="" /> : null}
            <span>{brand.name}</span>
          </header>
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  );
}

function FormAlert({ errors, notice }: { errors: FormErrors; notice?: string }) {
  return (
    <>
      {errors.form ? (
        <p className="alert" role="alert">
          {errors.form}
        </p>
      ) : null}
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
    </>
  );
}

type FieldProps = {
  name: string;
  label: string;
  type?: string;
  value?: string;
  errors: FormErrors;
  autoComplete?: string;
  required?: boolean;
  inputMode?: "numeric" | "email" | "text";
};

/** A labelled input whose error, when there is one, sits right under it and is announced with it. */
function Field({ name, label, type = "text", value, errors, autoComplete, required = true, inputMode }: FieldProps) {
  const id = `field-${name}`;
  const error = errors.fields[name];
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={name}
        type={type}
        defaultValue={type === "password" ? undefined : value}
        autoComplete={autoComplete}
        required={required}
        inputMode={inputMode}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
      />
      {error ? (
        <p className="error" id={`${id}-error`}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

const Hidden = ({ name, value }: { name: string; value: string | undefined }) => (value ? <input type="hidden" name={name} value={value} /> : null);

const withRedirect = (path: string, redirectTo: string | undefined) => (redirectTo ? `${path}?redirectTo=${encodeURIComponent(redirectTo)}` : path);

export function SignInPage(props: {
  frame: PageFrame;
  errors: FormErrors;
  email?: string;
  redirectTo?: string;
  notice?: string;
  signUp: boolean;
}) {
  const { frame, errors, redirectTo } = props;
  return (
    <Layout frame={frame} title="Sign in">
      <FormAlert errors={errors} notice={props.notice} />
      <form method="post" action={`${frame.base}/sign-in`} noValidate>
        <Hidden name="redirectTo" value={redirectTo} />
        <Field name="email" label="Email" type="email" value={props.email} errors={errors} autoComplete="username" inputMode="email" />
        <Field name="password" label="Password" type="password" errors={errors} autoComplete="current-password" />
        <button type="submit" className="block">
          Sign in
        </button>
      </form>
      {frame.emailCode ? (
        <p>
          <a href={withRedirect(`${frame.base}/sign-in/code`, redirectTo)}>Sign in with an email code instead</a>
        </p>
      ) : null}
      <div className="links">
        <a href={withRedirect(`${frame.base}/forgot-password`, redirectTo)}>Forgot password?</a>
        {props.signUp ? <a href={withRedirect(`${frame.base}/sign-up`, redirectTo)}>Create an account</a> : null}
      </div>
    </Layout>
  );
}

export function SignUpPage(props: { frame: PageFrame; errors: FormErrors; values: Record<string, string | undefined>; redirectTo?: string }) {
  const { frame, errors, values } = props;
  return (
    <Layout frame={frame} title="Create an account">
      <FormAlert errors={errors} />
      <form method="post" action={`${frame.base}/sign-up`} noValidate>
        <Hidden name="redirectTo" value={props.redirectTo} />
        <div className="row">
          <Field name="firstName" label="First name" value={values.firstName} errors={errors} autoComplete="given-name" required={false} />
          <Field name="lastName" label="Last name" value={values.lastName} errors={errors} autoComplete="family-name" required={false} />
        </div>
        <Field name="email" label="Email" type="email" value={values.email} errors={errors} autoComplete="email" inputMode="email" />
        <Field name="password" label="Password" type="password" errors={errors} autoComplete="new-password" />
        <Field name="confirmPassword" label="Confirm password" type="password" errors={errors} autoComplete="new-password" />
        <button type="submit" className="block">
          Create account
        </button>
      </form>
      <div className="links">
        <a href={withRedirect(`${frame.base}/sign-in`, props.redirectTo)}>Already have an account? Sign in</a>
      </div>
    </Layout>
  );
}

export function VerifyEmailPage(props: { frame: PageFrame; errors: FormErrors; email?: string; redirectTo?: string; notice?: string }) {
  const { frame, errors } = props;
  return (
    <Layout frame={frame} title="Confirm your email">
      <FormAlert errors={errors} notice={props.notice} />
      <p className="muted">We sent a 6-digit code to your email address. Enter it here to finish.</p>
      <form method="post" action={`${frame.base}/verify-email`} noValidate>
        <Hidden name="redirectTo" value={props.redirectTo} />
        <Field name="email" label="Email" type="email" value={props.email} errors={errors} autoComplete="email" inputMode="email" />
        <Field name="code" label="Code" errors={errors} autoComplete="one-time-code" inputMode="numeric" />
        <button type="submit" className="block">
          Confirm
        </button>
      </form>
      <form method="post" action={`${frame.base}/verify-email/resend`}>
        <Hidden name="email" value={props.email} />
        <Hidden name="redirectTo" value={props.redirectTo} />
        <button type="submit" className="secondary">
          Send a new code
        </button>
      </form>
    </Layout>
  );
}

export function ForgotPasswordPage(props: { frame: PageFrame; errors: FormErrors; email?: string; sent?: boolean }) {
  const { frame, errors } = props;
  return (
    <Layout frame={frame} title="Reset your password">
      <FormAlert errors={errors} notice={props.sent ? "If an account uses this address, a link to reset its password is on its way." : undefined} />
      <form method="post" action={`${frame.base}/forgot-password`} noValidate>
        <Field name="email" label="Email" type="email" value={props.email} errors={errors} autoComplete="email" inputMode="email" />
        <button type="submit" className="block">
          Send the reset link
        </button>
      </form>
      <div className="links">
        <a href={`${frame.base}/sign-in`}>Back to sign in</a>
      </div>
    </Layout>
  );
}

export function ResetPasswordPage(props: { frame: PageFrame; errors: FormErrors; token?: string; valid: boolean }) {
  const { frame, errors } = props;
  if (!props.valid) {
    return (
      <Layout frame={frame} title="Reset your password">
        <p className="alert" role="alert">
          This reset link is invalid or has expired.
        </p>
        <p>
          <a href={`${frame.base}/forgot-password`}>Ask for a new link</a>
        </p>
      </Layout>
    );
  }
  return (
    <Layout frame={frame} title="Choose a new password">
      <FormAlert errors={errors} />
      <form method="post" action={`${frame.base}/reset-password`} noValidate>
        <Hidden name="token" value={props.token} />
        <Field name="newPassword" label="New password" type="password" errors={errors} autoComplete="new-password" />
        <Field name="confirmPassword" label="Confirm new password" type="password" errors={errors} autoComplete="new-password" />
        <button type="submit" className="block">
          Set password
        </button>
      </form>
    </Layout>
  );
}

export type AccountUser = { email: string | null; firstName: string | null; lastName: string | null; emailVerified: boolean };
export type AccountSession = { id: string; createdAt: string; lastUsedAt: string; ip: string | null; userAgent: string | null; current: boolean };

export function AccountPage(props: {
  frame: PageFrame;
  user: AccountUser;
  hasPassword: boolean;
  sessions: AccountSession[];
  errors: FormErrors;
  notice?: string;
}) {
  const { frame, user, errors } = props;
  const others = props.sessions.filter((s) => !s.current).length;
  return (
    <Layout frame={frame} title="Your account" wide>
      <FormAlert errors={errors} notice={props.notice} />
      <p>
        Signed in as <strong>{user.email ?? "a guest"}</strong>
        {user.email && !user.emailVerified ? <span className="muted"> (not confirmed)</span> : null}
      </p>
      <form method="post" action={`${frame.base}/sign-out`}>
        <button type="submit" className="secondary">
          Sign out
        </button>
      </form>

      <h2>Profile</h2>
      <form method="post" action={`${frame.base}/account/profile`} noValidate>
        <div className="row">
          <Field name="firstName" label="First name" value={user.firstName ?? ""} errors={errors} autoComplete="given-name" required={false} />
          <Field name="lastName" label="Last name" value={user.lastName ?? ""} errors={errors} autoComplete="family-name" required={false} />
        </div>
        <button type="submit">Save profile</button>
      </form>

      <h2>Sessions</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">IP</th>
            <th scope="col">Last used</th>
            <th scope="col">
              <span className="muted">Action</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.sessions.map((s) => (
            <tr key={s.id}>
              <td>{s.userAgent ?? "Unknown device"}</td>
              <td>{s.ip ?? "unknown"}</td>
              <td>
                <time dateTime={s.lastUsedAt}>{s.lastUsedAt.replace("T", " ").slice(0, 16)} UTC</time>
              </td>
              <td>
                {s.current ? (
                  <span className="muted">This device</span>
                ) : (
                  <form method="post" action={`${frame.base}/account/sessions/${s.id}/revoke`}>
                    <button type="submit" className="danger" aria-label={`Revoke the session of ${s.userAgent ?? "an unknown device"}`}>
                      Revoke
                    </button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {others > 0 ? (
        <form method="post" action={`${frame.base}/account/sessions/revoke-others`}>
          <p>
            <button type="submit" className="danger">
              Sign out of every other session
            </button>
          </p>
        </form>
      ) : null}

      {props.hasPassword ? (
        <>
          <h2>Password</h2>
          <form method="post" action={`${frame.base}/account/password`} noValidate>
            <Field name="currentPassword" label="Current password" type="password" errors={errors} autoComplete="current-password" />
            <div className="row">
              <Field name="newPassword" label="New password" type="password" errors={errors} autoComplete="new-password" />
              <Field name="confirmPassword" label="Confirm new password" type="password" errors={errors} autoComplete="new-password" />
            </div>
            <p className="muted">Changing it signs out every other session.</p>
            <button type="submit">Change password</button>
          </form>
        </>
      ) : null}

      <h2>Delete account</h2>
      <form method="post" action={`${frame.base}/account/delete`} noValidate>
        <p className="muted">This deletes the account and everything attached to it, at once and for good.</p>
        {props.hasPassword ? (
          <Field name="deletePassword" label="Your password, to confirm" type="password" errors={errors} autoComplete="current-password" />
        ) : (
          <p className="muted">Without a password, this needs a sign-in from the last 5 minutes.</p>
        )}
        <button type="submit" className="danger">
          Delete my account
        </button>
      </form>
    </Layout>
  );
}

export function MessagePage(props: { frame: PageFrame; title: string; message: string; link?: { href: string; label: string } }) {
  return (
    <Layout frame={props.frame} title={props.title}>
      <p className="alert" role="alert">
        {props.message}
      </p>
      {props.link ? (
        <p>
          <a href={props.link.href}>{props.link.label}</a>
        </p>
      ) : null}
    </Layout>
  );
}

export function MfaPage(props: { frame: PageFrame; errors: FormErrors; mfaToken: string; redirectTo?: string; methods: string[] }) {
  const { frame, errors } = props;
  return (
    <Layout frame={frame} title="Two-step verification">
      <FormAlert errors={errors} />
      <form method="post" action={`${frame.base}/mfa`} noValidate>
        <Hidden name="mfaToken" value={props.mfaToken} />
        <Hidden name="redirectTo" value={props.redirectTo} />
        <Field name="code" label="Code from your authenticator app" errors={errors} autoComplete="one-time-code" inputMode="numeric" />
        <button type="submit" className="block">
          Verify
        </button>
      </form>
      {props.methods.includes("recovery_code") ? (
        <>
          <h2>Lost your device?</h2>
          <form method="post" action={`${frame.base}/mfa`} noValidate>
            <Hidden name="mfaToken" value={props.mfaToken} />
            <Hidden name="redirectTo" value={props.redirectTo} />
            <Field name="recoveryCode" label="Recovery code" errors={errors} autoComplete="off" />
            <p className="muted">A recovery code works once, and turns two-step verification off: set it up again afterwards.</p>
            <button type="submit" className="secondary">
              Use a recovery code
            </button>
          </form>
        </>
      ) : null}
    </Layout>
  );
}

export function EmailCodePage(props: { frame: PageFrame; errors: FormErrors; email?: string; sent: boolean; redirectTo?: string }) {
  const { frame, errors } = props;
  return (
    <Layout frame={frame} title="Sign in with an email code">
      <FormAlert errors={errors} notice={props.sent ? "If the address can sign in, a 6-digit code is on its way." : undefined} />
      {props.sent ? (
        <form method="post" action={`${frame.base}/sign-in/code/verify`} noValidate>
          <Hidden name="email" value={props.email} />
          <Hidden name="redirectTo" value={props.redirectTo} />
          <Field name="code" label="Code" errors={errors} autoComplete="one-time-code" inputMode="numeric" />
          <button type="submit" className="block">
            Sign in
          </button>
        </form>
      ) : (
        <form method="post" action={`${frame.base}/sign-in/code`} noValidate>
          <Hidden name="redirectTo" value={props.redirectTo} />
          <Field name="email" label="Email" type="email" value={props.email} errors={errors} autoComplete="email" inputMode="email" />
          <button type="submit" className="block">
            Send me a code
          </button>
        </form>
      )}
      <div className="links">
        <a href={withRedirect(`${frame.base}/sign-in`, props.redirectTo)}>Sign in with a password</a>
      </div>
    </Layout>
  );
}

export function AcceptInvitationPage(props: {
  frame: PageFrame;
  errors: FormErrors;
  token: string;
  invitation: { valid: boolean; email?: string; teamName?: string };
  signedInAs?: string | null;
  values?: Record<string, string | undefined>;
}) {
  const { frame, errors, invitation } = props;
  if (!invitation.valid) {
    return (
      <MessagePage frame={frame} title="Invitation" message="This invitation is invalid, has expired or was already used." link={{ href: `${frame.base}/sign-in`, label: "Go to sign in" }} />
    );
  }
  const team = invitation.teamName ? ` to join ${invitation.teamName}` : "";
  const invitedHere = props.signedInAs !== undefined && props.signedInAs === invitation.email;
  return (
    <Layout frame={frame} title={`You are invited${team}`}>
      <FormAlert errors={errors} />
      <p>
        The invitation is for <strong>{invitation.email}</strong>.
      </p>
      {invitedHere ? (
        <form method="post" action={`${frame.base}/accept-invitation`}>
          <Hidden name="token" value={props.token} />
          <button type="submit" className="block">
            Accept the invitation
          </button>
        </form>
      ) : (
        <form method="post" action={`${frame.base}/accept-invitation`} noValidate>
          <Hidden name="token" value={props.token} />
          <div className="row">
            <Field name="firstName" label="First name" value={props.values?.firstName} errors={errors} autoComplete="given-name" required={false} />
            <Field name="lastName" label="Last name" value={props.values?.lastName} errors={errors} autoComplete="family-name" required={false} />
          </div>
          <Field name="password" label="Choose a password" type="password" errors={errors} autoComplete="new-password" />
          <button type="submit" className="block">
            Create the account and accept
          </button>
          <p className="muted">
            Already have an account with this address? <a href={`${frame.base}/sign-in?redirectTo=${encodeURIComponent(`${frame.acceptUrl}?token=${props.token}`)}`}>Sign in</a> first.
          </p>
        </form>
      )}
    </Layout>
  );
}
