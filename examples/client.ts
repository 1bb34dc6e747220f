/**
 * Typed clients (Eden treaty): one for the host app of `mounted-app.ts`, one for a standalone server. Every plugin's
 * routes are typed under /auth; a route of a plugin the server has off answers 404 NOT_FOUND.
 */
import { treaty } from "@elysiajs/eden";
import type { App as StandaloneServer } from "bun-auth-server";
import type { App as HostApp } from "./mounted-app";

export async function signInAndLook(baseUrl: string, email: string, password: string) {
  const host = treaty<HostApp>(baseUrl);
  const signedIn = await host.auth.login.post({ email, password });
  if (signedIn.error) throw new Error(`sign-in failed: ${signedIn.status}`);
  if ("mfaRequired" in signedIn.data) return { mfaToken: signedIn.data.mfaToken };
  const headers = { authorization: `Bearer ${signedIn.data.accessToken}` };
  const me = await host.auth.me.get({ headers });
  const greeting = await host.hello.get();
  const note = await host.notes.post({ text: "remember the milk" });
  return { email: me.data?.email, greeting: greeting.data?.greeting, saved: note.data?.saved };
}

/** One route of each plugin, and core routes, against a standalone server. */
export async function tourOfThePlugins(baseUrl: string, email: string) {
  const auth = treaty<StandaloneServer>(baseUrl).auth;
  const registered = await auth.register.post({ email, password: "correct horse battery staple" }); // password
  await auth.code.request.post({ email }); // magic-code
  const guest = await auth.anonymous.post(); // anonymous
  await auth.oauth.exchange.post({ code: "one-time-code" }); // oauth
  await auth.mfa.verify.post({ mfaToken: "token", code: "123456" }); // mfa
  const token = registered.data && "accessToken" in registered.data ? registered.data.accessToken : "";
  const headers = { authorization: `Bearer ${token}` };
  const teams = await auth.teams.get({ headers }); // teams
  await auth.invitations.validate.post({ token: "invitation" }); // invitations
  const sessions = await auth.sessions.get({ headers }); // core
  await auth.session.get({ headers }); // core
  await auth.logout.post(undefined, { headers }); // core
  return { guestId: guest.data?.user.id, teams: teams.data?.length, sessions: sessions.data?.length };
}
