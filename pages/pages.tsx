import type { ReactNode } from "react";
import type { Brand } from "../src/branding";

/** What a form shows after a failed submission: one message for the form, and one per field, by field name. */
export type FormErrors = { form?: string; fields: Record<string, string> };
export const noErrors: FormErrors = { fields: {} };

/** A sign-in provider as its button shows it. */
export type ProviderButton = { id: string; label: string };

/**
 * Where the pages live and what they look like; the same for every page of one server. `api`: AUTH_BASE_PATH, where
 * the passkey script asks for its options; `passkeys`: the mfa plugin is on.
 */
export type PageFrame = {
  brand: Brand;
  base: string;
  api: string;
  stylesheet: string;
  script: string;
  acceptUrl: string;
  emailCode: boolean;
  passkeys: boolean;
  providers: ProviderButton[];
};

// react-dom/server is about 3 MB once loaded: a server that never shows a page never pays for it.
let reactDomServer: Promise<typeof import("react-dom/server")> | undefined;

export async function renderPage(element: ReactNode): Promise<string> {
  reactDomServer ??= import("react-dom/server");
  const { renderToStaticMarkup } = await reactDomServer;
  return `<!doctype html>${renderToStaticMarkup(element)}`;
}

function Layout({ frame, title, wide, script, children }: { frame: PageFrame; title: string; wide?: boolean; script?: boolean; children: ReactNode }) {
  const { brand } = frame;
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <title>{`${title} · ${brand.name}`}</title>
        <link rel="stylesheet" href={frame.stylesheet} />
        {script ? <script src={frame.script} defer /> : null}
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
  /** The element id (and error key) when a page shows the same field name more than once; default `name`. */
  id?: string;
  label: string;
  type?: string;
  value?: string;
  errors: FormErrors;
  autoComplete?: string;
  required?: boolean;
  inputMode?: "numeric" | "email" | "text";
};

/** A labelled input whose error, when there is one, sits right under it and is announced with it. */
function Field({ name, id: key = name, label, type = "text", value, errors, autoComplete, required = true, inputMode }: FieldProps) {
  const id = `field-${key}`;
  const error = errors.fields[key];
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
    <Layout frame={frame} title="Sign in" script={frame.passkeys}>
      <FormAlert errors={errors} notice={props.notice} />
      <form method="post" action={`${frame.base}/sign-in`} noValidate>
        <Hidden name="redirectTo" value={redirectTo} />
        <Field name="email" label="Email" type="email" value={props.email} errors={errors} autoComplete="username" inputMode="email" />
        <Field name="password" label="Password" type="password" errors={errors} autoComplete="current-password" />
        <button type="submit" className="block">
          Sign in
        </button>
      </form>
      {frame.providers.length > 0 || frame.passkeys ? <p className="or">or</p> : null}
      {frame.providers.length > 0 ? (
        <div className="providers">
          {frame.providers.map((p) => (
            <a key={p.id} className="button secondary block" href={withRedirect(`${frame.base}/oauth/${p.id}`, redirectTo)}>
              Continue with {p.label}
            </a>
          ))}
        </div>
      ) : null}
      {frame.passkeys ? (
        <PasskeyForm frame={frame} mode="sign-in" action={`${frame.base}/sign-in/passkey`} label="Sign in with a passkey" errors={errors}>
          <Hidden name="redirectTo" value={redirectTo} />
        </PasskeyForm>
      ) : null}
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

/**
 * A passkey's form: hidden until the script shows it (passkeys need JavaScript); on submit the script fills `response`
 * (and, but for `register`, `challengeId`) and posts it. Its error shows under its button, by the `passkey` key.
 */
function PasskeyForm(props: {
  frame: PageFrame;
  mode: "sign-in" | "reauth" | "register";
  action: string;
  label: string;
  errors: FormErrors;
  options?: string;
  children?: ReactNode;
}) {
  const error = props.errors.fields.passkey;
  return (
    <form
      method="post"
      action={props.action}
      hidden
      data-passkey={props.mode}
      data-options-url={props.mode === "register" ? undefined : `${props.frame.api}/passkeys/login/options`}
      data-options={props.options}
    >
      {props.children}
      {props.mode === "register" ? null : <input type="hidden" name="challengeId" value="" />}
      <input type="hidden" name="response" value="" />
      <button type="submit" className="secondary block" aria-describedby="field-passkey-error">
        {props.label}
      </button>
      <p className="error" id="field-passkey-error" data-passkey-error="" role="alert" hidden={!error}>
        {error}
      </p>
    </form>
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

export type AccountUser = { email: string | null; firstName: string | null; lastName: string | null; emailVerified: boolean; mfaEnabled: boolean };
export type AccountSession = { id: string; createdAt: string; lastUsedAt: string; ip: string | null; userAgent: string | null; current: boolean };
export type AccountPasskey = { id: string; name: string | null; createdAt: string; lastUsedAt: string | null };
export type AccountActivity = { id: number; type: string; ip: string | null; userAgent: string | null; createdAt: string };

/** What the account page shows; `passkeys` is null when the mfa plugin is off, `linked` when no provider is. */
export type AccountView = {
  user: AccountUser;
  hasPassword: boolean;
  sessions: AccountSession[];
  mfa: boolean;
  passkeys: AccountPasskey[] | null;
  linked: Array<{ id: string; label: string; email: string | null; linked: boolean }> | null;
  activity: AccountActivity[];
};

const when = (iso: string) => <time dateTime={iso}>{`${iso.replace("T", " ").slice(0, 16)} UTC`}</time>;

/** A one-button form; `fields` travel as hidden inputs. */
function ActionButton(props: { action: string; label: string; className?: string; ariaLabel?: string; fields?: Record<string, string> }) {
  return (
    <form method="post" action={props.action} className="inline">
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input key={name} type="hidden" name={name} value={value} />
      ))}
      <button type="submit" className={props.className} aria-label={props.ariaLabel}>
        {props.label}
      </button>
    </form>
  );
}

const ACTIVITY_LABELS: Record<string, string> = {
  sign_in: "Signed in",
  sign_in_failed: "Failed sign-in",
  logout: "Signed out",
  register: "Account created",
  password_changed: "Password changed",
  password_reset: "Password reset",
  email_changed: "Email changed",
  mfa_enabled: "Two-step verification on",
  mfa_disabled: "Two-step verification off",
  passkey_added: "Passkey added",
  passkey_removed: "Passkey removed",
  account_linked: "Provider linked",
  account_unlinked: "Provider unlinked",
  session_revoked: "Session signed out",
  reauthenticated: "Identity confirmed",
  profile_updated: "Profile updated",
};
const activityLabel = (type: string) => ACTIVITY_LABELS[type] ?? type.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

export function AccountPage(props: { frame: PageFrame; view: AccountView; errors: FormErrors; notice?: string }) {
  const { frame, errors } = props;
  const { user, sessions, passkeys, linked } = props.view;
  const others = sessions.filter((s) => !s.current).length;
  const a = (path: string) => `${frame.base}/account/${path}`;
  return (
    <Layout frame={frame} title="Your account" wide script={passkeys !== null}>
      <FormAlert errors={errors} notice={props.notice} />
      <p>
        Signed in as <strong>{user.email ?? "a guest"}</strong>
        {user.email && !user.emailVerified ? <span className="muted"> (not confirmed)</span> : null}
      </p>
      <ActionButton action={`${frame.base}/sign-out`} label="Sign out" className="secondary" />

      <h2>Profile</h2>
      <form method="post" action={a("profile")} noValidate>
        <div className="row">
          <Field name="firstName" label="First name" value={user.firstName ?? ""} errors={errors} autoComplete="given-name" required={false} />
          <Field name="lastName" label="Last name" value={user.lastName ?? ""} errors={errors} autoComplete="family-name" required={false} />
        </div>
        <button type="submit">Save profile</button>
      </form>

      <h2>Email</h2>
      <form method="post" action={a("email")} noValidate>
        <Field name="newEmail" label="New email address" type="email" errors={errors} autoComplete="email" inputMode="email" />
        {props.view.hasPassword ? <Field name="emailPassword" label="Your password, to confirm" type="password" errors={errors} autoComplete="current-password" /> : null}
        <p className="muted">A code goes to the new address; the change is made once you enter it.</p>
        <button type="submit">Change email</button>
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
        <tbody id="sessions">
          {sessions.map((s) => (
            <tr key={s.id}>
              <td>{s.userAgent ?? "Unknown device"}</td>
              <td>{s.ip ?? "unknown"}</td>
              <td>{when(s.lastUsedAt)}</td>
              <td>
                {s.current ? (
                  <span className="muted">This device</span>
                ) : (
                  <ActionButton
                    action={a(`sessions/${s.id}/revoke`)}
                    label="Revoke"
                    className="danger"
                    ariaLabel={`Revoke the session of ${s.userAgent ?? "an unknown device"}`}
                  />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {others > 0 ? (
        <p>
          <ActionButton action={a("sessions/revoke-others")} label="Sign out of every other session" className="danger" />
        </p>
      ) : null}

      {props.view.hasPassword ? (
        <>
          <h2>Password</h2>
          <form method="post" action={a("password")} noValidate>
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

      {props.view.mfa ? (
        <>
          <h2>Two-step verification</h2>
          {user.mfaEnabled ? (
            <>
              <p>
                <strong>On.</strong> Signing in asks for a code from your authenticator app.
              </p>
              <form method="post" action={a("recovery-codes")} noValidate>
                <Field name="recoveryCodesCode" label="Code from your app, for new recovery codes" errors={errors} autoComplete="one-time-code" inputMode="numeric" />
                <button type="submit" className="secondary">
                  Make new recovery codes
                </button>
              </form>
              <form method="post" action={a("totp/disable")} noValidate>
                <Field name="disableCode" label="Code from your app (or a recovery code), to turn it off" errors={errors} autoComplete="one-time-code" />
                <button type="submit" className="danger">
                  Turn two-step verification off
                </button>
              </form>
            </>
          ) : (
            <>
              <p className="muted">Off. With it on, a sign-in also asks for a code from an authenticator app.</p>
              <ActionButton action={a("totp/setup")} label="Set up an authenticator app" />
            </>
          )}
        </>
      ) : null}

      {passkeys !== null ? (
        <>
          <h2>Passkeys</h2>
          {passkeys.length === 0 ? <p className="muted">No passkeys yet.</p> : null}
          <ul className="items" id="passkeys">
            {passkeys.map((p) => (
              <li key={p.id}>
                <form method="post" action={a("passkeys/rename")} className="row end" noValidate>
                  <input type="hidden" name="id" value={p.id} />
                  <Field name="name" id={`name-${p.id}`} label="Passkey name" value={p.name ?? "Passkey"} errors={errors} autoComplete="off" />
                  <button type="submit" className="secondary">
                    Rename
                  </button>
                </form>
                <p className="muted">
                  Added {when(p.createdAt)}
                  {p.lastUsedAt ? <>, last used {when(p.lastUsedAt)}</> : null}
                </p>
                <ActionButton action={a("passkeys/remove")} label="Remove" className="danger" ariaLabel={`Remove the passkey ${p.name ?? ""}`} fields={{ id: p.id }} />
              </li>
            ))}
          </ul>
          <ActionButton action={a("passkeys/add")} label="Add a passkey" />
        </>
      ) : null}

      {linked !== null ? (
        <>
          <h2>Linked accounts</h2>
          <ul className="items" id="linked">
            {linked.map((p) => (
              <li key={p.id} className="row between">
                <span>
                  {p.label}
                  {p.linked ? <span className="muted"> · linked{p.email ? ` as ${p.email}` : ""}</span> : <span className="muted"> · not linked</span>}
                </span>
                {p.linked ? (
                  <ActionButton action={a("unlink")} label="Unlink" className="danger" ariaLabel={`Unlink ${p.label}`} fields={{ provider: p.id }} />
                ) : (
                  <ActionButton action={a("link")} label="Link" className="secondary" ariaLabel={`Link ${p.label}`} fields={{ provider: p.id }} />
                )}
              </li>
            ))}
          </ul>
        </>
      ) : null}

      <h2>Recent activity</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">What</th>
            <th scope="col">IP</th>
            <th scope="col">Device</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody id="activity">
          {props.view.activity.map((e) => (
            <tr key={e.id}>
              <td>{activityLabel(e.type)}</td>
              <td>{e.ip ?? "unknown"}</td>
              <td>{e.userAgent ?? "unknown"}</td>
              <td>{when(e.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Delete account</h2>
      <form method="post" action={a("delete")} noValidate>
        <p className="muted">This deletes the account and everything attached to it, at once and for good.</p>
        {props.view.hasPassword ? (
          <Field name="deletePassword" label="Your password, to confirm" type="password" errors={errors} autoComplete="current-password" />
        ) : (
          <p className="muted">You will be asked to confirm it is you.</p>
        )}
        <button type="submit" className="danger">
          Delete my account
        </button>
      </form>
    </Layout>
  );
}

/** How a step-up prompt lets this user prove a factor again, as POST /auth/reauth takes them. */
export type ReauthMethods = { password: boolean; totp: boolean; passkey: boolean; emailCode: boolean };

/**
 * Step-up: the action the user asked for needs a recent proof of a factor. The action and its fields travel along
 * (hidden) and run once the proof is given.
 */
const BackToAccount = ({ frame }: { frame: PageFrame }) => (
  <div className="links">
    <a href={`${frame.base}/account`}>Cancel</a>
  </div>
);

/** One way to prove it is you, posted with the action it unlocks. */
function ProofForm({ action, carried, field }: { action: string; carried: ReactNode; field: ReactNode }) {
  return (
    <form method="post" action={action} noValidate>
      {carried}
      {field}
      <button type="submit" className="block">
        Confirm
      </button>
    </form>
  );
}

export function ReauthPage(props: {
  frame: PageFrame;
  errors: FormErrors;
  methods: ReauthMethods;
  action: string;
  carried: Record<string, string>;
  codeSent?: boolean;
}) {
  const { frame, errors, methods } = props;
  const carried = (
    <>
      <input type="hidden" name="continue" value={props.action} />
      {Object.entries(props.carried).map(([name, value]) => (
        <input key={name} type="hidden" name={`carry.${name}`} value={value} />
      ))}
    </>
  );
  return (
    <Layout frame={frame} title="Confirm it is you" script={methods.passkey}>
      <FormAlert errors={errors} notice={props.codeSent ? "A 6-digit code is on its way to your email address." : undefined} />
      <p className="muted">This change needs a fresh proof that it is you. It goes ahead right after.</p>
      {methods.password ? <ProofForm action={`${frame.base}/reauth`} carried={carried} field={<Field name="password" label="Your password" type="password" errors={errors} autoComplete="current-password" />} /> : null}
      {methods.totp ? (
        <ProofForm
          action={`${frame.base}/reauth`}
          carried={carried}
          field={<Field name="totpCode" label="Code from your authenticator app, or a recovery code" errors={errors} autoComplete="one-time-code" />}
        />
      ) : null}
      {methods.emailCode ? (
        props.codeSent ? (
          <ProofForm action={`${frame.base}/reauth`} carried={carried} field={<Field name="emailCode" label="Code from the email" errors={errors} autoComplete="one-time-code" inputMode="numeric" />} />
        ) : (
          <form method="post" action={`${frame.base}/reauth/code`}>
            {carried}
            <button type="submit" className="secondary block">
              Email me a code
            </button>
          </form>
        )
      ) : null}
      {methods.passkey ? (
        <PasskeyForm frame={frame} mode="reauth" action={`${frame.base}/reauth`} label="Confirm with a passkey" errors={errors}>
          {carried}
        </PasskeyForm>
      ) : null}
      <BackToAccount frame={frame} />
    </Layout>
  );
}

export function TotpSetupPage(props: { frame: PageFrame; errors: FormErrors; otpauthUrl: string; secret: string; qrCode: string }) {
  const { frame, errors } = props;
  return (
    <Layout frame={frame} title="Set up an authenticator app">
      <FormAlert errors={errors} />
      <p>Scan this code with your authenticator app, or enter the key by hand.</p>
      <p className="qr">
        <img src={props.qrCode} alt="QR code of the key for your authenticator app" width={200} height={200} />
      </p>
      <p>
        Key: <code id="totp-secret">{props.secret}</code>
      </p>
      <form method="post" action={`${frame.base}/account/totp/confirm`} noValidate>
        <input type="hidden" name="otpauthUrl" value={props.otpauthUrl} />
        <Field name="code" label="The 6-digit code the app shows" errors={errors} autoComplete="one-time-code" inputMode="numeric" />
        <button type="submit" className="block">
          Turn on two-step verification
        </button>
      </form>
      <BackToAccount frame={frame} />
    </Layout>
  );
}

export function RecoveryCodesPage(props: { frame: PageFrame; codes: string[]; title: string }) {
  const { frame } = props;
  return (
    <Layout frame={frame} title={props.title}>
      <p className="notice" role="status">
        Keep these recovery codes somewhere safe. Each works once, if you lose your authenticator app. They are shown only now.
      </p>
      <ul className="codes" id="recovery-codes">
        {props.codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <p>
        <a href={`${frame.base}/account`}>I have saved them: back to your account</a>
      </p>
    </Layout>
  );
}

export function PasskeyAddPage(props: { frame: PageFrame; errors: FormErrors; options: string }) {
  const { frame, errors } = props;
  return (
    <Layout frame={frame} title="Add a passkey" script>
      <FormAlert errors={errors} />
      <noscript>
        <p className="alert">Passkeys need JavaScript: turn it on for this page, then try again.</p>
      </noscript>
      <PasskeyForm frame={frame} mode="register" action={`${frame.base}/account/passkeys/register`} label="Create the passkey" errors={errors} options={props.options}>
        <Field name="name" label="Name it (e.g. the device)" value="Passkey" errors={errors} autoComplete="off" />
      </PasskeyForm>
      <BackToAccount frame={frame} />
    </Layout>
  );
}

export function EmailChangePage(props: { frame: PageFrame; errors: FormErrors; newEmail: string }) {
  const { frame, errors } = props;
  return (
    <Layout frame={frame} title="Confirm your new email">
      <FormAlert errors={errors} notice={`A 6-digit code is on its way to ${props.newEmail}.`} />
      <form method="post" action={`${frame.base}/account/email/confirm`} noValidate>
        <input type="hidden" name="newEmail" value={props.newEmail} />
        <Field name="code" label="Code from the email" errors={errors} autoComplete="one-time-code" inputMode="numeric" />
        <button type="submit" className="block">
          Change my email
        </button>
      </form>
      <BackToAccount frame={frame} />
    </Layout>
  );
}

/** One step on to another site (a provider), by a link the passkey script follows at once when it runs. */
export function ContinuePage(props: { frame: PageFrame; title: string; href: string; label: string }) {
  return (
    <Layout frame={props.frame} title={props.title} script>
      <p>
        <a className="button block" href={props.href} data-follow="">
          {props.label}
        </a>
      </p>
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
